"""The last hour's dead letters by stage and minute, with the latest reasons, for the
dashboard: every worker reads the whole dead-letter topic from an hour back (dead letters
are the exception, so that is cheap) and so answers for the whole group.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from streams.config.slices import KafkaCluster
from streams.kafka.framing import decoded
from streams.kafka.readers import SinceTime
from streams.models import ErrorInfo
from streams.vocab import Stage

__all__ = ["DeadLetterFollower"]

log = logging.getLogger(__name__)

WINDOW_MIN = 60
RECENT_KEPT = 20


class _Reason(BaseModel):
    """The part of a dead letter the view needs (the original record is left unparsed)."""

    model_config = ConfigDict(extra="ignore")
    job_id: str | None
    stage: Stage
    error: ErrorInfo


class DeadLetterFollower(SinceTime):
    def __init__(
        self,
        *,
        cluster: KafkaCluster,
        topic: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(cluster=cluster, topic=topic)
        self._clock = clock
        self._by_minute: dict[int, Counter[str]] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_KEPT)

    def per_minute(self) -> dict[int, dict[str, int]]:
        """Epoch minute -> stage -> dead letters, for the last WINDOW_MIN minutes."""
        oldest = self._oldest_minute()
        for minute in [m for m in self._by_minute if m < oldest]:
            del self._by_minute[minute]
        return {minute: dict(stages) for minute, stages in sorted(self._by_minute.items())}

    def recent(self) -> list[dict[str, Any]]:
        """The latest dead letters' reasons of the last WINDOW_MIN minutes, newest first."""
        oldest_ms = self._oldest_minute() * 60_000
        return [r for r in reversed(self._recent) if r["at_ms"] >= oldest_ms]

    def _oldest_minute(self) -> int:
        return int(self._clock() // 60) - WINDOW_MIN + 1

    def apply(self, value: bytes, *, timestamp_ms: int) -> None:
        try:
            reason = decoded(_Reason, value)
        except ValidationError as exc:
            log.warning("dead letters: skipping a record that is not a dead letter: %s", exc)
            return
        self._by_minute.setdefault(timestamp_ms // 60_000, Counter())[reason.stage] += 1
        self._recent.append(
            {
                "at_ms": timestamp_ms,
                "job_id": reason.job_id,
                "stage": reason.stage,
                "error_type": reason.error.type,
                "message": reason.error.message,
            }
        )

    # --- as a follower of the topic -------------------------------------------------------

    def since_ms(self) -> int:
        return int((self._clock() - WINDOW_MIN * 60) * 1000)

    def restart(self) -> None:
        self._by_minute, self._recent = {}, deque(maxlen=RECENT_KEPT)

    def on_record(self, record: Any) -> None:
        self.apply(record.value or b"", timestamp_ms=record.timestamp)
