"""The instructions and the job text every provider is sent."""

from __future__ import annotations

import json

from streams.models import RawJob
from streams.schemas import enrichment_schema

SYSTEM_PROMPT = (
    "You extract structured data from job postings. Reply with JSON only, matching the "
    "given schema. Use null where the posting does not say. Keep the summary to two "
    "sentences. List skills and tech stack as short names, most important first."
)


def system_prompt(*, with_schema: bool) -> str:
    """The system prompt; vendors without schema enforcement also get the schema in it."""
    if not with_schema:
        return SYSTEM_PROMPT
    schema = json.dumps(enrichment_schema(), separators=(",", ":"))
    return f"{SYSTEM_PROMPT}\nThe JSON must validate against this JSON Schema:\n{schema}"


def user_message(job: RawJob) -> str:
    lines = [f"Title: {job.title}"]
    for label, value in (
        ("Company", job.company),
        ("Location", job.location),
        ("Salary", job.salary_text),
    ):
        if value:
            lines.append(f"{label}: {value}")
    lines.append(f"Description:\n{job.description}")
    return "\n".join(lines)
