"""``llm-streams worker`` in one process: Faust's worker, with a bounded shutdown.

A signal starts Faust's clean stop (jobs in flight finish, offsets are committed, the group is
left). With the broker gone each of those steps waits out its own timeouts, a minute and more;
past LLM_SHUTDOWN_TIMEOUT_S the process exits anyway. Nothing is lost: what it could not
commit is taken again after a restart, and what it had published is not paid or published
twice (``pipeline.once``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
from typing import Any

import faust
import uvloop

__all__ = ["GC_THRESHOLDS", "Worker", "collect_less", "use_uvloop"]

log = logging.getLogger(__name__)

EXIT_SHUTDOWN_TIMED_OUT = 1
# At info these say every service's start and stop (Faust, mode, and Faust's consumer as
# subclassed in streams.kafka.transport), every connection (aiokafka) and every request
# (httpx: a line per provider call); this package's own loggers say what matters once.
# LLM_SERVICE_LOG_LEVEL=debug brings them all back.
CHATTY_LOGGERS = ("faust", "mode", "aiokafka", "httpx", "streams.kafka.transport")
GC_THRESHOLDS = (50_000, 20, 10)


def use_uvloop() -> None:
    """Event loops made from now on are uvloop's (libuv): the same asyncio, with less CPU
    per job (bench.throughput). Before the app is made, so that all of it runs on one."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def collect_less() -> None:
    """Once the worker has started. Python's collector walks every object it tracks in a
    full collection, and a started worker holds hundreds of thousands that live as long
    as it does (modules, Faust, each model's validator): what exists now is moved out of
    every later collection, and the youngest generation is collected after GC_THRESHOLDS[0]
    allocations instead of 700, so that a thousand calls in flight are not walked again and
    again. Refcounting still frees everything that is not in a cycle at once."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Worker(faust.Worker):
    def __init__(self, app: faust.App, *, shutdown_timeout_s: float, **options: Any) -> None:
        super().__init__(app, **options)
        self.shutdown_timeout_s = shutdown_timeout_s
        if options.get("loglevel") != "debug":
            for name in CHATTY_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)

    async def on_first_start(self) -> None:
        await super().on_first_start()  # sets logging up
        log.info(
            "starting %s: brokers %s", self.app.conf.id, ",".join(map(str, self.app.conf.broker))
        )

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        collect_less()
        log.info("ready: consuming; web view at %s", self.app.conf.canonical_url)

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if not self._signal_stop_time:
            log.info(
                "stopping on %s: finishing the jobs in flight and committing (at most %gs)",
                signal.name,
                self.shutdown_timeout_s,
            )
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
