"""Jobs from a file, for ``llm-streams produce``: JSON lines, or CSV with a header.

CSV column names are RawJob's fields; an empty cell is a field left out, and an ``options``
cell holds the options as JSON. Every row is validated like a JSON line; a rejected one is
named by its line number in the file and not sent.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import ValidationError

from streams.errors import describe
from streams.models import RawJob

__all__ = ["Format", "format_of", "read_jobs"]

Format = Literal["jsonl", "csv"]


def format_of(name: str, given: Format | None) -> Format:
    """The format asked for, else the file name's (``.csv``), else JSON lines."""
    if given is not None:
        return given
    return "csv" if name.lower().endswith(".csv") else "jsonl"


def read_jobs(text: str, *, format: Format) -> tuple[list[RawJob], list[str]]:
    """The valid jobs, and a line per rejected one (``line N: rejected: reason``)."""
    jobs: list[RawJob] = []
    rejected: list[str] = []
    rows = _csv_rows(text) if format == "csv" else _json_lines(text)
    for number, row in rows:
        try:
            job = RawJob.model_validate_json(row) if isinstance(row, str) else _from_cells(row)
        except ValidationError as exc:
            rejected.append(f"line {number}: rejected: {describe(exc, limit=1)}")
        except json.JSONDecodeError as exc:
            rejected.append(f"line {number}: rejected: options: not JSON ({exc.msg})")
        else:
            jobs.append(job)
    return jobs, rejected


def _json_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        cells = {name: value for name, value in row.items() if name and value}
        if cells:
            yield reader.line_num, cells


def _from_cells(cells: dict[str, Any]) -> RawJob:
    if "options" in cells:
        cells = cells | {"options": json.loads(cells["options"])}
    return RawJob.model_validate(cells)
