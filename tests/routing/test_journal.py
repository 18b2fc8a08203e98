"""Each call recorded before it leaves: what the router tells its journal, and the ids its
attempts then carry (their ledger events settle the records with them)."""

from __future__ import annotations

from collections.abc import Iterable

from devstack.harness import SimulatorThread
from streams.config.settings import Settings
from streams.providers.base import Provider
from streams.routing.journal import Sending
from streams.routing.router import Router
from tests.routing.helpers import route
from tests.routing.test_router import JOB


class ListJournal:
    def __init__(self, sim: SimulatorThread) -> None:
        self.sim = sim
        self.calls: list[Sending] = []
        self.requests_before: list[int] = []  # the simulator's count as each was recorded

    async def sent(self, call: Sending) -> bool:
        self.calls.append(call)
        self.requests_before.append(sum(self.sim.requests().values()))
        return True

    async def written(self, call_ids: Iterable[str | None]) -> None:
        return None


async def test_every_call_is_recorded_before_it_is_sent_and_its_attempt_names_the_record(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={500: 1.0})
    journal = ListJournal(sim)
    settings = base_settings.model_copy(update={"llm_retry_attempts": 2})
    router = Router(settings.routing(), providers, journal=journal)
    routed = await route(router, JOB)
    assert [a.provider for a in routed.attempts] == ["openai", "openai", "deepseek"]
    assert [c.provider for c in journal.calls] == ["openai", "openai", "deepseek"]
    assert journal.requests_before == [0, 1, 2], "each recorded before its request arrived"
    assert [a.call_id for a in routed.attempts] == [c.call_id for c in journal.calls]
    assert len({c.call_id for c in journal.calls}) == 3
    first = journal.calls[0]
    assert (first.job, first.attempt, first.lane) == (JOB, 1, "live")
    assert first.estimate == providers["openai"].cut_off_usage(
        router.request_for(JOB), providers["openai"].model
    )
    assert 0 < first.lasts_s <= settings.llm_job_deadline_s


async def test_a_call_without_a_record_names_none(
    base_settings: Settings, providers: dict[str, Provider]
) -> None:
    routed = await route(Router(base_settings.routing(), providers), JOB)
    assert [a.call_id for a in routed.attempts] == [None]
