"""Shared plumbing of the benchmarks: the `doorstep` command, free ports, a server's lifetime."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


def backends(parser: argparse.ArgumentParser, text: str) -> tuple[str, ...]:
    """The database backends named in a comma-separated option; unknown ones are an error."""
    chosen = tuple(b.strip() for b in text.split(",") if b.strip())
    unknown = set(chosen) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    return chosen


def doorstep_command() -> list[str]:
    """The `doorstep` console script of this interpreter, or `python -m server.cli`."""
    script = Path(sys.executable).with_name("doorstep")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "server.cli"]


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any DOORSTEP_ setting, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
    env.update(settings)
    return env


def run_cli(
    args: Sequence[str], *, env: Mapping[str, str], stdin: str | None = None, timeout: float = 120
) -> str:
    """Run one `doorstep` command to completion; its stdout, or RuntimeError with its stderr."""
    done = subprocess.run(
        [*doorstep_command(), *args],
        input=stdin,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"doorstep {' '.join(args[:2])} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def http_status(url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 1) -> int:
    """Status of a GET; 0 when nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return 0


def wait_ready(url: str, process: subprocess.Popen[bytes], *, timeout: float, poll: float) -> None:
    """Poll until `url` answers 200; RuntimeError if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        if http_status(url, timeout=max(poll, 0.5)) == 200:
            return
        time.sleep(poll)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s")


def stop(process: subprocess.Popen[bytes], *, grace: float = 15) -> None:
    """SIGTERM the process group started for `process`, then SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@contextlib.contextmanager
def server_process(
    args: Sequence[str], *, env: Mapping[str, str], log_path: Path, pin: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `doorstep ARGS` in its own process group, optionally under `taskset -c PIN`."""
    prefix = ["taskset", "-c", pin] if pin is not None and shutil.which("taskset") else []
    with external_process([*prefix, *doorstep_command(), *args], env=env, log_path=log_path) as p:
        yield p


def log_tail(path: Path, limit: int = 2000) -> str:
    """The end of a server log, for error messages."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


@contextlib.contextmanager
def external_process(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start any program (not `doorstep`) in its own process group; stopped on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop(process)


def wait_port(
    host: str, port: int, process: subprocess.Popen[bytes], *, timeout: float = 30
) -> None:
    """Poll until something accepts TCP connections on host:port; RuntimeError otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process exited with {process.returncode} before it listened")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {host}:{port} within {timeout:.0f}s")
