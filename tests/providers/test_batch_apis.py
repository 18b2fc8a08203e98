"""Each vendor's Batch API adapter against the simulator over real HTTP: a batch sent,
polled while it runs, read back when it ends (succeeded and errored requests alike, read as
live answers are), found again by its label, and batches that fail, expire or are
cancelled."""

from __future__ import annotations

import time

import pytest

from devstack.harness import SimulatorThread
from streams.errors import ProviderUnavailable, RateLimited
from streams.providers.base import EnrichRequest
from streams.providers.batch import BATCH_APIS
from streams.providers.batch.base import BatchAPI, BatchStatus
from streams.providers.build import adapter_for
from tests.eventually import eventually_async
from tests.providers.helpers import JOB, MODELS, config

VENDORS = sorted(BATCH_APIS)
DOOMED = JOB.model_copy(update={"job_id": "p2", "title": "Doomed Engineer"})


def _api(sim: SimulatorThread, name: str) -> BatchAPI:
    base_url = sim.env()[f"{name.upper()}_BASE_URL"]
    return BATCH_APIS[name](adapter_for(name)(config(name, base_url)))


async def _until_ended(api: BatchAPI, batch_id: str, model: str) -> BatchStatus:
    return await eventually_async(
        lambda: api.poll(batch_id, model=model),
        lambda status: status.state != "running",
        timeout_s=10,
        every_s=0.05,
        what=f"batch {batch_id} ended",
    )


@pytest.mark.parametrize("name", VENDORS)
async def test_a_batch_comes_back_with_each_request_read_as_a_live_answer(
    sim: SimulatorThread, name: str
) -> None:
    sim.set_faults(name, batch_delay_s=0.3, errors={429: 1.0}, match="Doomed")
    api, model = _api(sim, name), MODELS[name]
    label = f"llm-streams-test-{name}"
    requests = [(f"{label}_0", EnrichRequest(job=JOB)), (f"{label}_1", EnrichRequest(job=DOOMED))]
    started = time.time()
    try:
        batch_id = await api.submit(label=label, model=model, requests=requests)
        assert (await api.poll(batch_id, model=model)).state == "running"
        status = await _until_ended(api, batch_id, model)
        assert await api.find(label=label, created_after=started - 5, count=2) == batch_id
    finally:
        await api.provider.aclose()
    assert status.state == "completed"
    done, failed = status.items[f"{label}_0"], status.items[f"{label}_1"]
    assert done.completion is not None
    assert done.completion.enrichment.summary
    usage = done.completion.usage
    assert usage.cost_usd > 0
    assert usage.batch_saved_usd == pytest.approx(usage.cost_usd), "half the list price"
    assert isinstance(failed.error, RateLimited), failed
    assert sim.stats()["batches_created"] == {name: 1}
    assert sim.stats()["requests"].get(name, 0) == 0, "no live call"


async def test_an_anthropic_batch_is_told_from_another_as_large_by_its_custom_ids(
    sim: SimulatorThread,
) -> None:
    """Anthropic keeps no label: a batch is ours only if its results' custom ids say so, and
    cannot be told while it runs."""
    sim.set_faults("anthropic", batch_delay_s=0.3)
    api, model = _api(sim, "anthropic"), MODELS["anthropic"]
    started = time.time()
    try:
        ids = {
            label: await api.submit(
                label=label, model=model, requests=[(f"{label}_0", EnrichRequest(job=JOB))]
            )
            for label in ("llm-streams-mine", "llm-streams-other")
        }
        with pytest.raises(ProviderUnavailable, match="cannot tell yet"):
            await api.find(label="llm-streams-mine", created_after=started - 5, count=1)
        for batch_id in ids.values():
            await _until_ended(api, batch_id, model)
        for label, batch_id in ids.items():
            assert await api.find(label=label, created_after=started - 5, count=1) == batch_id
        assert await api.find(label="llm-streams-none", created_after=started - 5, count=1) is None
    finally:
        await api.provider.aclose()


@pytest.mark.parametrize("name", VENDORS)
@pytest.mark.parametrize("end", ["failed", "expired", "cancelled"])
async def test_a_batch_that_fails_expires_or_is_cancelled_says_so(
    sim: SimulatorThread, name: str, end: str
) -> None:
    sim.set_faults(name, batch_delay_s=0.1, batch_end=end)
    api, model = _api(sim, name), MODELS[name]
    try:
        batch_id = await api.submit(
            label=f"x-{name}-{end}", model=model, requests=[("r0", EnrichRequest(job=JOB))]
        )
        status = await _until_ended(api, batch_id, model)
    finally:
        await api.provider.aclose()
    # Anthropic has no failed batch: its requests end canceled.
    expected = "cancelled" if (name, end) == ("anthropic", "failed") else end
    assert status.state == expected, status
    item = status.items.get("r0")
    assert item is None or isinstance(item.error, ProviderUnavailable), "never ran"
