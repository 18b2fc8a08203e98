"""What an evaluation keeps on ``llm.evals`` (compacted): each candidate's answer to each
item, keyed by candidate, prompt version and item, so an item is never paid for twice; and
each run's scores, keyed by run id, for ``llm-streams eval --history``."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from streams.message import Message
from streams.models import Usage, utcnow
from streams.shadow.report import Interval

__all__ = ["CandidateScore", "EvalAnswer", "EvalRecord", "EvalRun", "answer_key", "records"]

Outcome = Literal["answered", "invalid", "failed"]


def answer_key(candidate: str, prompt_version: str, item: str) -> str:
    text = f"{candidate}\n{prompt_version}\n{item}".encode()
    return "answer:" + hashlib.sha256(text).hexdigest()[:24]


class EvalAnswer(Message):
    kind: Literal["answer"] = "answer"
    candidate: str
    prompt_version: str
    item: str = Field(description="the item's digest: its job and labels")
    job_id: str
    outcome: Outcome
    reason: str | None = Field(default=None, description="why invalid or failed")
    model: str | None = None
    enrichment: dict[str, Any] | None = Field(default=None, description="the answer, as JSON")
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = Field(ge=0)
    batch: bool = Field(description="answered through the vendor's Batch API")
    at: datetime = Field(default_factory=utcnow)

    @property
    def key(self) -> str:
        return answer_key(self.candidate, self.prompt_version, self.item)


class CandidateScore(BaseModel):
    candidate: str
    prompt_version: str
    items: int
    invalid_rate: float
    failure_rate: float
    overall: Interval
    fields: dict[str, Interval] = Field(description="accuracy per labelled field (dotted path)")
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    usd_per_1000: float


class EvalRun(Message):
    kind: Literal["run"] = "run"
    run_id: str
    set_name: str
    set_digest: str = Field(description="of the set file's bytes")
    paid: int = Field(description="items answered by calls in this run; the rest were kept")
    at: datetime = Field(default_factory=utcnow)
    score: CandidateScore

    @property
    def key(self) -> str:
        return f"run:{self.run_id}"


EvalRecord = Annotated[EvalAnswer | EvalRun, Field(discriminator="kind")]
records: TypeAdapter[EvalAnswer | EvalRun] = TypeAdapter(EvalRecord)
