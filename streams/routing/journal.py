"""What the router tells before each call leaves: the write-ahead record of a billed call.

A worker killed with calls under way (SIGKILL, the OOM killer, a lost node) cannot put them on
the ledger, yet the vendor bills them. So before a request is sent, the router hands its
``Journal`` what the call is and may cost, and the writer of the call's ledger event waits for
that record to be written; the event settles the record, and a record nobody settles is
estimated by another worker (``streams.pipeline.sent`` writes them, the stats aggregator
settles and estimates them). The router knows nothing of where the records go.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from streams.models import RawJob, Usage

__all__ = ["NO_JOURNAL", "Journal", "Sending"]


@dataclass(frozen=True, kw_only=True)
class Sending:
    """One call about to leave."""

    call_id: str
    job: RawJob
    provider: str
    model: str
    attempt: int
    lane: Literal["live", "shadow"]
    estimate: Usage  # its prompt and the most output the vendor may bill, priced
    lasts_s: float  # the most it and its job may still take: its job's deadline from now


class Journal(Protocol):
    async def sent(self, call: Sending) -> bool:
        """Enqueue the call's record, not waiting for the broker; whether it was taken."""
        ...

    async def written(self, call_ids: Iterable[str | None]) -> None:
        """Wait until these calls' records are on the broker: before anything settles
        them (their ledger events), so a settlement never precedes its record (None: a call
        without one)."""
        ...


class _NoJournal:
    async def sent(self, call: Sending) -> bool:
        return False

    async def written(self, call_ids: Iterable[str | None]) -> None:
        return None


NO_JOURNAL: Journal = _NoJournal()  # calls recorded nowhere before they leave
