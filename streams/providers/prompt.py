"""The instructions and the job text every provider is sent.

The static part (instructions, then the schema) comes first and is the same bytes for every
job, so the vendors' prompt caches can serve it; the job text comes last. The static part is
about 400 tokens: DeepSeek caches it (64-token units), while OpenAI and Gemini cache nothing
below 1,024 and 2,048 prompt tokens, and Claude Haiku 4.5 nothing below 4,096. The cache
markers are sent anyway; they cost nothing while the prefix is shorter than the minimum.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from streams.models import RawJob
from streams.providers.structured import EVERY_KEYWORD, schema_for

__all__ = [
    "Repair",
    "conversation",
    "input_tokens_estimate",
    "prompt_version",
    "system_prompt",
    "user_message",
]

# A stated approximation, not a tokenizer: about four characters a token for English text
# (the vendors' own rule of thumb); their tokenizers differ from it by some tens of per cent.
CHARS_PER_TOKEN = 4

SYSTEM_PROMPT = (
    "You extract structured data from job postings. Reply with JSON only, matching the "
    "given schema. Use null where the posting does not say. Keep the summary to two "
    "sentences. List skills and tech stack as short names, most important first. Give a "
    "salary only with its currency and period, in whole units or cents; else salary is null."
)


def system_prompt(*, with_schema: bool, instructions: str | None = None) -> str:
    """The system prompt (``instructions``: a variant's, in place of the service's own);
    vendors without schema enforcement also get the schema in it."""
    text = instructions or SYSTEM_PROMPT
    if not with_schema:
        return text
    return f"{text}\nThe JSON must validate against this JSON Schema:\n{_schema_text()}"


@functools.cache
def _schema_text() -> str:
    # Every job's prompt, its version and its token estimate use it: serialised once.
    return json.dumps(schema_for(EVERY_KEYWORD), separators=(",", ":"))


def prompt_version(instructions: str | None = None) -> str:
    """A short hash of everything static that shapes the answer: instructions and schema."""
    return _hash(system_prompt(with_schema=True, instructions=instructions))


@functools.cache
def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def input_tokens_estimate(job: RawJob) -> int:
    """The prompt tokens a request for ``job`` sends, estimated from its length."""
    return (len(system_prompt(with_schema=True)) + len(user_message(job))) // CHARS_PER_TOKEN


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


@dataclass(frozen=True, kw_only=True)
class Repair:
    """A conversation continued: the model's answer, and what was wrong with it."""

    answer: str
    problems: str


Turn = tuple[Literal["user", "assistant"], str]


def conversation(job: RawJob, repair: Repair | None) -> list[Turn]:
    """The turns after the system prompt: the job; for a repair, the model's answer and
    what was wrong with it, so the model corrects its own answer rather than start over."""
    turns: list[Turn] = [("user", user_message(job))]
    if repair is not None:
        turns += [
            ("assistant", repair.answer),
            (
                "user",
                f"That reply is not valid: {repair.problems}. Reply again with the whole "
                "corrected JSON object only.",
            ),
        ]
    return turns
