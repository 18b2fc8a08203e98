"""A broker outage told in a few log lines instead of thousands.

While the broker is out of reach, aiokafka logs every failed connect, metadata refresh and
fetch, some thirty lines a second. A filter on its loggers lets the first through as a warning
that the broker is lost, holds back the rest (counting them), says at most every 30 s that it
is still lost and how many attempts failed, and says once, at info, when it is reachable again.

On a fresh broker a worker's first moments also bring an ERROR from aiokafka, "Group
Coordinator Request failed: GroupCoordinatorNotAvailableError": the broker has not yet elected
the coordinator of the group (it creates its offsets topic first), and aiokafka asks again.
That is said once, at info, as what it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaError

__all__ = ["OutageLog", "broker_reachable"]

log = logging.getLogger(__name__)

SUMMARY_EVERY_S = 30.0
BROKER_CHECK_S = 1.0
# What aiokafka says when it cannot reach a broker (lower case): these start an outage...
LOST_WORDS = ("unable connect", "connect call failed", "connection refused", "connectionerror")
# ...and while it lasts, these are its echoes (elsewhere they may be a broker starting up).
ECHO_WORDS = (*LOST_WORDS, "metadata", "failed fetch", "node", "coordinator")
NO_COORDINATOR_YET = "GroupCoordinatorNotAvailableError"


async def broker_reachable(app: Any) -> bool:
    """Whether the broker answers a metadata request now, through the client under Faust's
    producer (a worker still starting has none yet)."""
    client = getattr(getattr(app.producer, "_producer", None), "client", None)
    if client is None:
        return False
    try:
        async with asyncio.timeout(BROKER_CHECK_S):
            await client.fetch_all_metadata()
    except (KafkaError, TimeoutError, OSError):
        return False
    return True


class OutageLog(logging.Filter):
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.lost_at: float | None = None
        self.failures = 0
        self._said_at = 0.0
        self._coordinator_awaited = False

    def install(self) -> None:
        """On every aiokafka logger (a filter on a parent does not see its children's)."""
        names = [n for n in logging.Logger.manager.loggerDict if n.startswith("aiokafka")]
        for name in names:
            logging.getLogger(name).addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.lost_at is None and NO_COORDINATOR_YET in message:
            if self._coordinator_awaited:
                return False
            self._coordinator_awaited = True
            _reword(
                record,
                "waiting for the broker to elect the group's coordinator (usual on a fresh broker)",
                level=logging.INFO,
            )
            return True
        words = LOST_WORDS if self.lost_at is None else ECHO_WORDS
        if record.levelno < logging.WARNING or not any(w in message.lower() for w in words):
            return True
        now = self.clock()
        self.failures += 1
        if self.lost_at is None:
            self.lost_at = self._said_at = now
            _reword(record, f"broker lost: {message}")
            return True
        if now - self._said_at < SUMMARY_EVERY_S:
            return False
        self._said_at = now
        _reword(
            record,
            f"broker still out of reach after {now - self.lost_at:.0f}s: "
            f"{self.failures} failed attempts so far (last: {message})",
        )
        return True

    def reachable(self) -> None:
        """The broker answered: say so once if it had been lost."""
        if self.lost_at is None:
            return
        log.info(
            "broker reachable again after %.0fs (%d failed attempts)",
            self.clock() - self.lost_at,
            self.failures,
        )
        self.lost_at, self.failures = None, 0


def _reword(record: logging.LogRecord, message: str, *, level: int = logging.WARNING) -> None:
    record.msg, record.args = message, ()
    record.levelno, record.levelname = level, logging.getLevelName(level)
