"""The message models, and the JSON Schema files generated from them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from streams.models import TOPIC_MESSAGES, ControlCommand, EnrichedJob, EnrichedJobRecord, RawJob
from streams.schemas import contract, contract_file, enrichment_schema, stale_contracts
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "jobs.jsonl"


def test_schema_files_match_the_models() -> None:
    assert stale_contracts(ROOT / "schemas") == [], "run: llm-streams schemas"


def test_every_contract_has_an_id_and_a_version() -> None:
    ids = set()
    for name in TOPIC_MESSAGES:
        schema = contract(name)
        jsonschema.Draft202012Validator.check_schema(schema)
        version = TOPIC_MESSAGES[name].contract_version
        assert schema["version"] == version
        assert schema["$id"].endswith(f":{name}:v{version}")
        ids.add(schema["$id"])
    assert len(ids) == len(TOPIC_MESSAGES)


def _contract_file(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))
    return loaded


def _enriched(version: int, **enrichment: Any) -> dict[str, Any]:
    answer = {
        "summary": "Builds payment APIs.",
        "seniority": "senior",
        "role_family": "engineering",
        "skills": ["Go"],
        "tech_stack": ["PostgreSQL"],
        "years_experience": 4,
        "remote_policy": "remote",
        "salary": {"min": 70000, "max": 85000, "currency": "EUR", "period": "year"},
        "key_requirements": [],
    }
    job = {"job_id": "j1", "title": "Backend Engineer", "description": "Go."}
    return {
        "schema_version": version,
        "job_id": "j1",
        "job": job,
        "enrichment": answer | enrichment,
        "provider": "openai",
        "model": "gpt-5.4-mini",
        "attempts": [],
        "usage": {},
        "latency_ms": 12.5,
    }


def test_a_version_1_record_stays_readable_and_version_2_holds_its_answers_to_more() -> None:
    nonsense = {"years_experience": 2018, "salary": None, "skills": ["Go", "go"]}
    old = _enriched(1, **nonsense)
    jsonschema.validate(old, _contract_file("enriched-job.v1.json"))  # as it was published
    assert EnrichedJobRecord.model_validate(old).enrichment.years_experience == 2018

    new = EnrichedJob.model_validate(_enriched(2)).model_dump(mode="json")
    assert new["schema_version"] == 2
    jsonschema.validate(new, _contract_file("enriched-job.v3.json"))
    assert EnrichedJobRecord.model_validate(new).schema_version == 2

    for wrong in (
        _enriched(2, **nonsense),
        _enriched(2, salary={**new["enrichment"]["salary"], "currency": "johns"}),
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, _contract_file("enriched-job.v3.json"))
        with pytest.raises(ValidationError):
            EnrichedJob.model_validate(wrong)


def test_examples_are_valid_and_varied() -> None:
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()
    schema = json.loads((ROOT / "schemas" / contract_file("raw-job")).read_text())
    jobs = []
    for line in lines:
        jsonschema.validate(json.loads(line), schema)
        jobs.append(RawJob.model_validate_json(line))
    assert len(jobs) >= 24
    assert len({job.job_id for job in jobs}) == len(jobs)
    assert any(not job.description.isascii() for job in jobs)
    assert any(len(job.description) > 600 for job in jobs)


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_provider_schema_stays_in_the_strict_subset() -> None:
    schema = enrichment_schema()
    for node in _walk(schema):
        assert "$ref" not in node
        assert "anyOf" not in node
        assert "title" not in node
        assert "default" not in node
        types = node.get("type")
        if types == "object" or (isinstance(types, list) and "object" in types):
            assert node["additionalProperties"] is False
            assert sorted(node["required"]) == sorted(node["properties"])


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "t", "description": "d"}, "job_id"),
        ({"job_id": "1", "description": "d"}, "title"),
        ({"job_id": "1", "title": "t", "description": ""}, "description"),
        ({"job_id": "1", "title": "t", "description": "d", "salary": 5}, "salary"),
        (
            {"job_id": "1", "title": "t", "description": "d", "options": {"temperature": 9}},
            "options.temperature",
        ),
        (
            {
                "job_id": "1",
                "title": "t",
                "description": "d",
                "options": {"preferred_provider": "x"},
            },
            "options.preferred_provider",
        ),
        ({"job_id": "1", "title": "t", "description": "d" * 100_001}, "description"),
    ],
)
def test_raw_job_rejects_bad_input_naming_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RawJob.model_validate(payload)
    locations = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert field in locations


def test_control_commands_need_their_arguments() -> None:
    assert ControlCommand(action="disable", provider="openai").provider == "openai"
    with pytest.raises(ValidationError, match="needs a provider"):
        ControlCommand(action="enable")
    with pytest.raises(ValidationError, match="config patch"):
        ControlCommand(action="set_config", config={})
