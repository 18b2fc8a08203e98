"""``llm-streams worker`` in one process: Faust's worker, with a bounded shutdown.

A signal starts Faust's clean stop (jobs in flight finish, offsets are committed, the group is
left). With the broker gone each of those steps waits out its own timeouts, a minute and more;
past LLM_SHUTDOWN_TIMEOUT_S the process exits anyway. Nothing is lost: what it could not
commit is taken again after a restart, and what it had published is not paid or published
twice (``pipeline.once``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import faust

log = logging.getLogger(__name__)

EXIT_SHUTDOWN_TIMED_OUT = 1


class Worker(faust.Worker):
    def __init__(self, app: faust.App, *, shutdown_timeout_s: float, **options: Any) -> None:
        super().__init__(app, **options)
        self.shutdown_timeout_s = shutdown_timeout_s
        if options.get("loglevel") != "debug":
            # httpx says every request at info: a line per provider call.
            logging.getLogger("httpx").setLevel(logging.WARNING)

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if not self._signal_stop_time:
            # A thread, not the event loop: the loop may be what is stuck.
            timer = threading.Timer(self.shutdown_timeout_s, self._give_up)
            timer.daemon = True
            timer.start()
        super()._schedule_shutdown(signal)

    def _give_up(self) -> None:
        log.error(
            "not stopped within LLM_SHUTDOWN_TIMEOUT_S=%gs: exiting; work not committed is "
            "taken again after a restart",
            self.shutdown_timeout_s,
        )
        logging.shutdown()
        os._exit(EXIT_SHUTDOWN_TIMED_OUT)
