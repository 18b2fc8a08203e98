"""Faust's aiokafka transport, with one race in its consumer closed.

After a rebalance Faust resumes the stream partitions and then seeks them to their committed
offsets (``Recovery.on_recovery_completed``). Its fetch loop may already be delivering a batch
fetched in between: the seek resets the loop's read offset to the committed one, the rest of
that batch then looks like a jump ahead, and Faust records the skipped range as a "gap" that
it later commits as if processed, while the records fetched again after the seek are dropped
as already read. A worker restarted on a backlog lost up to a few dozen jobs per partition
that way (tests/test_faults.py, the SIGTERM test, failed 3 runs in 5 before this).

Stopping the fetch loop for the length of the seek closes it: the loop abandons its batch,
and fetches again from the committed offset once the seek is done. Records already handed to
the stream before the seek come round a second time (duplicates, never losses).

The broker URL ``streams-kafka://host:port`` selects this transport (an entry point in
``pyproject.toml``).
"""

from __future__ import annotations

import asyncio

from faust.transport.drivers import aiokafka


class Consumer(aiokafka.Consumer):
    async def perform_seek(self) -> None:
        # Faust also seeks with the flow already stopped (mid-rebalance); then it is not
        # ours to resume.
        was_flowing = self.flow_active
        if was_flowing:
            self.stop_flow()
            await asyncio.sleep(0)  # let the fetch loop see the stop before offsets move
        try:
            await super().perform_seek()
        finally:
            if was_flowing:
                self.resume_flow()


class Transport(aiokafka.Transport):
    Consumer = Consumer
