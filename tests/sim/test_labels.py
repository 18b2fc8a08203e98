"""The simulator's labelled mode: a job of the set is answered with its labels."""

from __future__ import annotations

import json

import pytest

from llm_sim.enrichment import derive_enrichment
from llm_sim.labels import Labels

ITEM = {
    "job": {"job_id": "a", "title": "Barista", "description": "Morning shifts. $17 - $19 an hour."},
    "expected": {"seniority": "junior", "salary": {"currency": "EUR"}, "years_experience": None},
}
TEXT = "Title: Barista\nDescription:\nMorning shifts. $17 - $19 an hour."


def test_a_job_of_the_set_is_answered_with_its_labels_and_the_rules_fill_the_rest() -> None:
    labels = Labels()
    assert labels.load(json.dumps(ITEM) + "\n\n") == 1
    derived = derive_enrichment(TEXT)
    answer = labels.overlay(TEXT, derived)
    assert answer["seniority"] == "junior"
    assert answer["years_experience"] is None
    assert derived["salary"]["currency"] == "USD"
    assert answer["salary"] == derived["salary"] | {"currency": "EUR"}
    assert answer["role_family"] == derived["role_family"], "unlabelled: the rules' answer"
    other = "Title: Barista\nDescription:\nEvening shifts."
    assert labels.overlay(other, derive_enrichment(other)) == derive_enrichment(other)


def test_a_line_that_is_not_an_item_is_refused_with_its_number() -> None:
    with pytest.raises(ValueError, match="line 2: not an evaluation item"):
        Labels().load(json.dumps(ITEM) + '\n{"job": {}}\n')
