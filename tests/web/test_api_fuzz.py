"""The web API fuzzed from its own OpenAPI document (schemathesis): never a 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.harness import SimulatorThread, worker_process

pytestmark = pytest.mark.slow


def test_no_input_makes_the_api_fail_with_a_5xx(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    env = worker_env | {"LLM_SERVICE_ADMIN_TOKEN": "fuzz-token"}
    with worker_process(env, tmp_path / "worker.log"):
        url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}"
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "15",
                "--workers",
                "1",
                "--header",
                "Authorization: Bearer fuzz-token",
                "--seed",
                "1",
            ],
            env=os.environ | {"NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert result.returncode == 0, result.stdout[-6000:] + "\n--- worker log ---\n" + log[-4000:]
