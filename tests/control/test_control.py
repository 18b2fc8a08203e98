"""Runtime control over the real control topic: every worker applies commands in order, a
restarted worker replays them, and an invalid patch changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from devstack.harness import SimulatorThread
from streams.app import create_app
from streams.config.runtime import RuntimeConfig
from streams.config.settings import Settings
from streams.errors import ConfigurationError
from streams.models import ControlCommand
from tests.eventually import eventually_async
from tests.kafka_helpers import (
    commit_rounds,
    committed,
    consume,
    job_record,
    produce,
    send_command,
)

pytestmark = pytest.mark.slow


async def test_a_disabled_provider_gets_no_attempts_also_after_a_restart(
    settings: Settings, sim: SimulatorThread
) -> None:
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    first = await create_app(settings)
    async with first.running():
        await send_command(settings, ControlCommand(action="disable", provider="openai"))

        async def applied() -> bool:
            return not first.router.status().providers["openai"].enabled

        await eventually_async(applied)
        await produce(bootstrap, raw, [job_record(f"a{n}") for n in range(5)])
        enriched = await consume(bootstrap, settings.llm_topic_enriched, count=5)
    assert {json.loads(r.value)["provider"] for r in enriched} == {"deepseek"}
    assert sim.requests().get("openai", 0) == 0

    second = await create_app(settings)  # a restart: same app id, same topics
    async with second.running():
        await asyncio.wait_for(second.control.ready.wait(), 30)
        assert not second.router.status().providers["openai"].enabled, "replayed before taking jobs"
        await produce(bootstrap, raw, [job_record(f"b{n}") for n in range(5)])
        enriched = await consume(bootstrap, settings.llm_topic_enriched, count=10)
        await send_command(settings, ControlCommand(action="enable", provider="openai"))

        async def enabled() -> bool:
            return second.router.status().providers["openai"].enabled

        await eventually_async(enabled)
    assert {json.loads(r.value)["provider"] for r in enriched} == {"deepseek"}
    assert sim.requests().get("openai", 0) == 0


async def test_config_patches_apply_everywhere_and_bad_ones_change_nothing(
    settings: Settings, sim: SimulatorThread
) -> None:
    app = await create_app(settings)
    async with app.running():
        await send_command(
            settings,
            ControlCommand(action="set_config", config={"LLM_PROVIDER_CHAIN": "deepseek,openai"}),
        )

        async def applied() -> bool:
            return app.router.chain == ("deepseek", "openai")

        await eventually_async(applied)
        # an invalid patch that reached the topic anyway is refused by the worker
        bad = ControlCommand(action="set_config", config={"llm_job_deadline_s": -1})
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        await producer.send_and_wait(
            settings.llm_topic_control, bad.model_dump_json().encode(), key=b"config:bad"
        )
        await producer.send_and_wait(
            settings.llm_topic_control, b"not a command at all", key=b"junk"
        )
        await producer.stop()
        await send_command(
            settings, ControlCommand(action="set_config", config={"LLM_RETRY_ATTEMPTS": 4})
        )

        async def later_patch() -> bool:
            return app.control.state.config.routing().retry.attempts == 4

        await eventually_async(later_patch)
        assert app.router.default_deadline_s == settings.llm_job_deadline_s
        assert app.router.chain == ("deepseek", "openai")
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, [job_record("c")])
        (record,) = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=1
        )
    assert json.loads(record.value)["provider"] == "deepseek"


@pytest.mark.parametrize(
    ("patch", "says"),
    [
        ({"LLM_JOB_DEADLINE_S": -1}, "LLM_JOB_DEADLINE_S"),
        ({"LLM_PROVIDER_CHAIN": "openai,nobody"}, "LLM_PROVIDER_CHAIN"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "x:1"}, "cannot change at run time"),
        ({"NO_SUCH_THING": 1}, "not a setting"),
        ({"LLM_PROVIDER_LIMITS": {"openai": {"rpm": 0}}}, "LLM_PROVIDER_LIMITS"),
    ],
)
def test_invalid_patches_are_refused_with_a_reason(
    settings: Settings, patch: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says):
        RuntimeConfig(settings).patched(patch)


def test_cli_refuses_a_bad_patch_and_publishes_a_good_one(worker_env: dict[str, str]) -> None:
    env = os.environ | worker_env

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    refused = cli("config", "set", "LLM_ATTEMPT_TIMEOUT_S=999")
    assert refused.returncode == 1
    assert "LLM_ATTEMPT_TIMEOUT_S" in refused.stderr
    ok = cli("config", "set", "LLM_RETRY_ATTEMPTS=3", "LLM_PROVIDER_CHAIN=gemini,openai")
    assert ok.returncode == 0, ok.stderr
    disabled = cli("provider", "disable", "gemini")
    assert disabled.returncode == 0, disabled.stderr
    assert cli("provider", "disable", "nobody").returncode == 2
    tail = cli(
        "tail",
        "--topic",
        worker_env["LLM_TOPIC_CONTROL"],
        "--from-beginning",
        "--limit",
        "2",
        "--timeout",
        "10",
    )
    commands = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [c["action"] for c in commands] == ["set_config", "disable"]
    assert commands[0]["config"] == {"LLM_RETRY_ATTEMPTS": 3, "LLM_PROVIDER_CHAIN": "gemini,openai"}


async def test_intake_pauses_while_every_provider_is_off_and_nothing_is_dead_lettered(
    settings: Settings, sim: SimulatorThread
) -> None:
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    app = await create_app(settings)
    async with app.running():
        for provider in ("openai", "deepseek"):
            await send_command(settings, ControlCommand(action="disable", provider=provider))

        async def all_off() -> bool:
            return app.router.next_ready_at() == float("inf")

        await eventually_async(all_off)
        await produce(bootstrap, raw, [job_record(f"p{n}") for n in range(6)])
        await commit_rounds(app, 3)
        offsets = await committed(bootstrap, settings.llm_app_id, raw)
        assert sum(offsets.values()) <= 1, "at most the job already taken waits; none commit"
        await send_command(settings, ControlCommand(action="enable", provider="deepseek"))
        enriched = await consume(bootstrap, settings.llm_topic_enriched, count=6)
    assert len({json.loads(r.value)["job_id"] for r in enriched}) == 6
    assert sim.requests().get("openai", 0) == 0
