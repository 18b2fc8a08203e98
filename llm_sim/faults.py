"""What goes wrong, per provider, and the seeded dice that decide each request's fate."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

OutputFault = Literal["malformed", "schema_invalid", "truncated", "blank"]
# A valid answer that disagrees on purpose: another seniority or remote policy, one skill
# dropped, the salary bounds 20 % higher.
Perturbation = Literal["seniority", "remote_policy", "skills", "salary"]
SENIORITIES = ["intern", "junior", "mid", "senior", "lead", "principal", "unknown"]
REMOTE_POLICIES = ["remote", "hybrid", "onsite", "unknown"]
# How a batch ends: its items done, or the batch failed, expired or was cancelled as a whole.
BatchEnd = Literal["completed", "failed", "expired", "cancelled"]
K = TypeVar("K")


class Faults(BaseModel):
    """Faults for one provider. Rates are probabilities per request; ``match`` limits all
    of them to requests whose prompt contains that text (so a test can target one job)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0, ge=0, description="fixed part of every answer's delay")
    latency_jitter_ms: float = Field(default=0, ge=0, description="plus uniform(0, this)")
    errors: dict[int, float] = Field(
        default_factory=dict, description="HTTP status -> probability, e.g. {429: 0.3}"
    )
    retry_after_s: float | None = Field(default=None, ge=0, description="sent with 429/503/529")
    hang_rate: float = Field(default=0, ge=0, le=1, description="never answer")
    outputs: dict[OutputFault, float] = Field(
        default_factory=dict, description="bad answers with a 200, e.g. {'truncated': 0.1}"
    )
    perturb: dict[Perturbation, float] = Field(
        default_factory=dict,
        description="field -> probability of a wrong but valid value, each rolled on its own",
    )
    perturb_model: str | None = Field(
        default=None, description="perturb only this model's answers (others of the provider not)"
    )
    repairable: bool = Field(
        default=False,
        description="an invalid output (malformed, schema_invalid) is answered right once the "
        "model is told what was wrong (a follow-up turn)",
    )
    truncated_below: int | None = Field(
        default=None, ge=1, description="answers truncated while max tokens asked is below this"
    )
    match: str | None = None
    batch_delay_s: float = Field(
        default=1.0, ge=0, description="a batch ends this long after it was created"
    )
    batch_end: BatchEnd = "completed"
    batch_max_requests: int | None = Field(
        default=None, ge=1, description="refuse a larger batch at creation, as too large"
    )

    @model_validator(mode="after")
    def _check_rates(self) -> Faults:
        for status, rate in self.errors.items():
            if not 400 <= status <= 599 or not 0 <= rate <= 1:
                raise ValueError(f"errors: {status}: {rate} is not a 4xx/5xx status with a rate")
        if not all(0 <= rate <= 1 for rate in self.perturb.values()):
            raise ValueError("perturb: rates must be within 0-1")
        for name, rates in (("errors", self.errors.values()), ("outputs", self.outputs.values())):
            if not all(0 <= r <= 1 for r in rates) or sum(rates) > 1:
                raise ValueError(f"{name}: rates must be within 0-1 and add up to at most 1")
        return self


@dataclass(frozen=True, kw_only=True)
class Fate:
    """What happens to one request."""

    delay_s: float = 0.0
    hang: bool = False
    error_status: int | None = None
    output: OutputFault | None = None
    perturbed: frozenset[Perturbation] = frozenset()


class Dice:
    """Seeded per provider: the same faults and the same requests give the same fates."""

    def __init__(self, seed: int, provider: str) -> None:
        self._rng = random.Random(f"{seed}:{provider}")
        self._name = f"{seed}:{provider}"

    def fate(self, faults: Faults, prompt: str) -> Fate:
        if faults.match is not None and faults.match not in prompt:
            return Fate()
        delay = faults.latency_ms + self._rng.uniform(0, faults.latency_jitter_ms)
        return Fate(
            delay_s=delay / 1000,
            hang=self._rng.random() < faults.hang_rate,
            error_status=self._pick(faults.errors),
            output=self._pick(faults.outputs),
            perturbed=frozenset(
                f for f, rate in faults.perturb.items() if self._rng.random() < rate
            ),
        )

    def _roll(self, field: str, prompt: str) -> float:
        """A die for one field of one request text: the same jobs are perturbed in every
        run, whatever order concurrent calls arrive in, so a test knows the rate it gets."""
        digest = hashlib.blake2b(f"{self._name}:{field}:{prompt}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big") / 2**64

    def _pick(self, rates: dict[K, float]) -> K | None:
        roll = self._rng.random()
        for choice, rate in rates.items():
            if roll < rate:
                return choice
            roll -= rate
        return None


def spoil(content: str, output: OutputFault | None) -> tuple[str, bool]:
    """The answer text after an output fault, and whether it counts as truncated."""
    if output == "malformed":
        return content[: len(content) // 2], False
    if output == "schema_invalid":
        return json.dumps({"summary": 42, "seniority": "wizard", "skills": "everything"}), False
    if output == "truncated":
        return content[: len(content) // 3], True
    if output == "blank":
        return "   ", False
    return content, False


def perturb(answer: dict[str, Any], fields: frozenset[Perturbation]) -> dict[str, Any]:
    """The answer (Enrichment data) made wrong in ``fields``, still schema-valid."""
    answer = dict(answer)
    if "seniority" in fields:
        answer["seniority"] = SENIORITIES[(SENIORITIES.index(answer["seniority"]) + 1) % 7]
    if "remote_policy" in fields:
        at = REMOTE_POLICIES.index(answer["remote_policy"])
        answer["remote_policy"] = REMOTE_POLICIES[(at + 1) % len(REMOTE_POLICIES)]
    if "skills" in fields and answer["skills"]:
        answer["skills"] = answer["skills"][:-1]
    if "salary" in fields and answer["salary"] is not None:
        salary = dict(answer["salary"])
        for bound in ("min", "max"):
            if salary[bound] is not None:
                salary[bound] = round(salary[bound] * 1.2, 2)
        answer["salary"] = salary
    return answer
