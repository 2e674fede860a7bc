"""Run ``gptlab serve`` in a background process, from Python or a notebook:

    from gptlab.serve import start_server
    with start_server("runs/shakespeare-char") as server:     # waits until it answers
        httpx.post(f"{server.url}/v1/generate", json={"prompt": "ROMEO:\\n"}).json()
    # stopped here; or server = start_server(...); ...; server.stop()

Plain standard library: no torch, no FastAPI in the calling process.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Python 3.10 has no typing.Self
    from typing_extensions import Self

from gptlab.serve.cli import LISTENING
from gptlab.serve.limits import Limits

__all__ = ["ServerProcess", "start_server"]

_OPTIONS = ("max_new_tokens_cap", "max_prompt_chars", "max_concurrent", "max_queue",
            "device", "name")
_RUNNING: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


class ServerProcess:
    """A ``gptlab serve`` process: ``url``, ``port``, ``stop()``, ``log()``; a context
    manager that stops it on exit. It is also stopped when Python exits."""

    def __init__(self, process: subprocess.Popen, host: str) -> None:
        self.process = process
        self.host = host
        self.port: int | None = None
        self.url: str | None = None
        self._out: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="gptlab-serve-log")
        self._reader.start()
        _RUNNING.add(self)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self._out.append(line)
            if self.url is None and line.startswith(LISTENING):
                url = line[len(LISTENING):].strip()
                self.port = int(url.rsplit(":", 1)[1])
                self.url = url

    def log(self) -> str:
        """Everything the server printed so far (its output and its JSON access log)."""
        with self._lock:
            return "".join(self._out)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        """GET /health, as a dict."""
        if self.url is None:
            raise RuntimeError("the server has not started listening yet.")
        with urllib.request.urlopen(f"{self.url}/health", timeout=timeout) as r:
            return json.loads(r.read())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` s). Safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._reader.join(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        _RUNNING.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped (exit {self.process.returncode})"
        return f"ServerProcess(url={self.url!r}, pid={self.process.pid}, {state})"


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop(timeout=5)


def start_server(ckpt: str | os.PathLike, *, host: str = "127.0.0.1", port: int | None = None,
                 timeout: float = 60.0, **limits: Any) -> ServerProcess:
    """Start ``python -m gptlab.cli serve --ckpt ckpt ...`` and wait until /health answers.

    port None (the default) takes any free port; ``server.url`` says which. ``limits`` are
    the command's options: max_new_tokens_cap, max_prompt_chars, max_concurrent, max_queue,
    device, name. FileNotFoundError for a folder that is not a checkpoint, ValueError for a
    limit out of range, RuntimeError (with the server's output) when it does not start
    within ``timeout`` seconds.
    """
    unknown = sorted(set(limits) - set(_OPTIONS))
    if unknown:
        raise TypeError(f"start_server() got unknown options {unknown}; it takes "
                        f"{', '.join(_OPTIONS)}.")
    Limits(**{k: v for k, v in limits.items() if k in Limits.__dataclass_fields__})
    ckpt = Path(ckpt)
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json")
               if not (ckpt / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{ckpt} is not a checkpoint folder to serve (missing "
                                f"{', '.join(missing)}); use a folder from `gptlab train` or "
                                "train(..., tokenizer=tok).")
    cmd = [sys.executable, "-m", "gptlab.cli", "serve", "--ckpt", str(ckpt), "--host", host,
           "--port", str(0 if port is None else port)]
    for key, value in limits.items():
        if value is not None:
            cmd += ["--" + key.replace("_", "-"), str(value)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            encoding="utf-8", errors="replace", env=env)
    server = ServerProcess(proc, host)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            server.stop()
            raise RuntimeError(f"gptlab serve exited with status {proc.returncode} before it "
                               f"was ready:\n{_tail(server.log())}")
        if server.url is not None:
            try:
                server.health(timeout=2)
                return server
            except (urllib.error.URLError, OSError, ValueError):
                pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"gptlab serve did not answer on /health within {timeout} s:\n"
                       f"{_tail(server.log())}")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(no output)"


