"""A replay's cost estimate: which provider each job would go to first, and the arithmetic."""

from __future__ import annotations

from collections import Counter

from streams.models import DeadLetter, ErrorInfo, JobOptions, OriginalRecord, RawJob
from streams.observe import stats as st
from streams.observe.estimate import NO_CALL, estimates, first_providers


def _letter(value: str) -> DeadLetter:
    original = OriginalRecord(topic="jobs.raw", partition=0, offset=0, key=None, value=value)
    return DeadLetter(
        job_id=None, stage="enrich", error=ErrorInfo(type="X", message="x"), original=original
    )


def test_each_job_goes_to_its_preferred_provider_if_the_chain_allows_it() -> None:
    job = RawJob(job_id="j", title="t", description="d")
    prefers_gemini = job.model_copy(update={"options": JobOptions(preferred_provider="gemini")})
    prefers_ollama = job.model_copy(update={"options": JobOptions(preferred_provider="ollama")})
    letters = [
        _letter(job.model_dump_json()),
        _letter(prefers_gemini.model_dump_json()),
        _letter(prefers_ollama.model_dump_json()),  # not in the chain
        _letter("not a job"),
    ]
    assert first_providers(letters, ["openai", "gemini"]) == Counter(
        {"openai": 2, "gemini": 1, NO_CALL: 1}
    )


def test_the_cost_per_job_includes_failed_attempts_and_the_cache_share() -> None:
    openai = st.empty() | {"outcomes": {"success": 8, "error": 2}, "cost_usd": 0.02}
    gemini = st.empty() | {"outcomes": {"success": 0}, "cache_hits": 2}
    rows = {
        r.provider: r
        for r in estimates(
            Counter({"openai": 10, "gemini": 1}), {"openai": openai, "gemini": gemini}
        )
    }
    # 0.02 USD over 8 enriched jobs; 2 of 10 jobs came from the repost cache
    assert rows["openai"].usd_per_job == 0.0025
    assert rows["openai"].cache_hit_rate == 0.2
    assert rows["openai"].usd == 10 * 0.0025 * 0.8
    assert rows["gemini"].usd is None, "nothing enriched there yet: no estimate"
