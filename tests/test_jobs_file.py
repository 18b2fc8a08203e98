"""Reading jobs for ``llm-streams produce``: JSON lines and CSV, validated the same way."""

from __future__ import annotations

from streams.jobs_file import format_of, read_jobs

CSV = """job_id,title,description,company,options
c1,Data Engineer,Spark and Kafka.,Acme,
c2,Backend Engineer,"Go, Postgres; ""remote"".",,"{""preferred_provider"": ""gemini""}"
c3,No description,,,
c4,Bad options,Text.,,{nope
"""


def test_csv_rows_are_jobs_and_bad_ones_are_named_by_line() -> None:
    jobs, rejected = read_jobs(CSV, format="csv")
    assert [job.job_id for job in jobs] == ["c1", "c2"]
    assert jobs[0].company == "Acme"
    assert jobs[1].company is None, "an empty cell is a field left out"
    assert jobs[1].description == 'Go, Postgres; "remote".'
    assert jobs[1].options is not None
    assert jobs[1].options.preferred_provider == "gemini"
    assert rejected == [
        "line 4: rejected: description: Field required",
        "line 5: rejected: options: not JSON (Expecting property name enclosed in double quotes)",
    ]


def test_json_lines_are_read_as_before() -> None:
    text = '{"job_id": "j1", "title": "t", "description": "d"}\n\nnot json\n'
    jobs, rejected = read_jobs(text, format="jsonl")
    assert [job.job_id for job in jobs] == ["j1"]
    assert len(rejected) == 1
    assert rejected[0].startswith("line 3: rejected")


def test_the_format_follows_the_file_name_unless_given() -> None:
    assert format_of("jobs.CSV", None) == "csv"
    assert format_of("<stdin>", None) == "jsonl"
    assert format_of("<stdin>", "csv") == "csv"
