"""Evaluation sets: labelled jobs answered by candidate models and scored field by field,
with a gate for prompt and model changes."""

__all__: list[str] = []
