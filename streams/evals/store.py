"""``llm.evals`` read whole and written with the others' retry (one partition, compacted:
an answer per candidate, prompt version and item, a record per run), and the evaluation's
calls on the ledger. Both topics are made if no worker made them yet."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from streams.config.slices import KafkaCluster
from streams.evals.records import EvalAnswer, EvalRun, records
from streams.kafka.admin import ensure_topic, read_to_end
from streams.kafka.clients import producer
from streams.kafka.framing import payload_of
from streams.kafka.producer import ClientProducer
from streams.kafka.publisher import Outgoing, publish_all
from streams.kafka.topics import Topic
from streams.models import ProviderCall

__all__ = ["EvalStore"]


class EvalStore:
    def __init__(self, *, cluster: KafkaCluster, topic: str, calls: Topic[ProviderCall]) -> None:
        self.cluster = cluster
        self.topic: Topic[BaseModel] = Topic(
            name=topic, model=BaseModel, partitions=1, compacted=True
        )
        self.calls = calls

    async def read(self) -> tuple[dict[str, EvalAnswer], list[EvalRun]]:
        """The answers kept, by key, and the runs, oldest first; a record that is neither
        is skipped."""
        await self._ensure()
        answers: dict[str, EvalAnswer] = {}
        runs: list[EvalRun] = []
        for record in await read_to_end(self.cluster, self.topic.name):
            try:
                found = records.validate_json(payload_of(record.value))
            except ValidationError:
                continue
            if isinstance(found, EvalAnswer):
                answers[found.key] = found
            else:
                runs.append(found)
        return answers, sorted(runs, key=lambda run: run.at)

    async def write(
        self, answers: Sequence[EvalAnswer], run: EvalRun, *, calls: Sequence[Outgoing] = ()
    ) -> None:
        """The new answers' calls on the ledger, the answers, then the run."""
        outgoing = [
            *calls,
            *(self.topic.record(a.key, a) for a in answers),
            self.topic.record(run.key, run),
        ]
        async with producer(self.cluster) as client:
            await publish_all(ClientProducer(client), outgoing)

    async def _ensure(self) -> None:
        for spec in (self.topic.spec(), self.calls.spec()):
            await ensure_topic(
                self.cluster,
                spec.name,
                partitions=spec.partitions,
                compacted=spec.compacted,
                retention_s=spec.retention_s,
            )
