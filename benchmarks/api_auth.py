"""Throughput and latency of an authenticated `GET /api/v1/me`, on SQLite and on PostgreSQL.

For each backend: a fresh data directory (and, for PostgreSQL, a fresh database
`doorstep_bench_<random>` that is dropped afterwards), `doorstep db upgrade`, an
organisation, a user and a token made with the real CLI, then `doorstep serve`
pinned to one core with `taskset`, loaded from another core by `wrk` with 50
connections. Loopback only; every process it starts is stopped before it exits.

Prints one JSON line:
{"benchmark": "api_auth", "sqlite": {"rps": ..., "p50_ms": ..., "p99_ms": ...},
 "postgresql": {...}, "cores_for_server": 1, "connections": 50, "duration_s": 10}

Usage: python benchmarks/api_auth.py [--backends sqlite,postgresql] [--duration 10]
       [--connections 50] [--warmup 3] [--py-spy DIR]
Environment: BENCH_PG_DSN (default postgresql://postgres@127.0.0.1:5432/postgres) is the
maintenance database used to create and drop the benchmark database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    LOOPBACK,
    backends,
    clean_env,
    free_port,
    http_status,
    log_tail,
    run_cli,
    server_process,
    wait_ready,
)

PATH = "/api/v1/me"
BENCH_PASSWORD = "benchmark password 1"
DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True, slots=True)
class WrkResult:
    """The figures read from wrk's report."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    def as_json(self) -> dict[str, Any]:
        """The per-backend JSON object."""
        return {
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "requests": self.requests,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
        }


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(report: str) -> WrkResult:
    """Requests/s, the 50% and 99% latencies, and error counts from `wrk --latency` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", report, re.MULTILINE)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m|h)\s*$", report, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$", report, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", report, re.MULTILINE)
    if rps is None or p50 is None or p99 is None or total is None:
        raise RuntimeError(f"cannot read wrk's report:\n{report}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report
    )
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_to_ms(*p50.groups()),
        p99_ms=_to_ms(*p99.groups()),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def ensure_wrk() -> str:
    """Path of wrk, installing Debian's package when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("api_auth: wrk is missing; installing Debian's wrk", file=sys.stderr)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            subprocess.run(install, capture_output=True, check=False)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("api_auth: wrk is required (apt-get install wrk)")
    return found


@dataclass(frozen=True, slots=True)
class Cores:
    """Where the server and the load generator run; None when the machine has one core."""

    server: str | None
    load: str | None


def pick_cores() -> Cores:
    """The first allowed core for the server, the second for wrk."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2 or not shutil.which("taskset"):
        return Cores(server=None, load=None)
    return Cores(server=str(allowed[0]), load=str(allowed[1]))


def run_wrk(
    wrk: str, url: str, token: str, *, cores: Cores, connections: int, seconds: float
) -> WrkResult:
    """One wrk run against `url`, pinned to the load core."""
    prefix = ["taskset", "-c", cores.load] if cores.load is not None else []
    command = [
        *prefix,
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "5s",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr.strip()}")
    return parse_wrk(done.stdout)


def py_spy_path() -> str | None:
    """py-spy beside this interpreter or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() else shutil.which("py-spy")


# --- PostgreSQL database lifetime -------------------------------------------------------


def _with_database(dsn: str, name: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(dsn: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def postgres_database(admin_dsn: str) -> Iterator[str]:
    """A fresh database for the benchmark; yields its SQLAlchemy URL and drops it after."""
    name = f"doorstep_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        url = _with_database(admin_dsn, name)
        yield re.sub(r"^postgres(?:ql)?://", "postgresql+asyncpg://", url)
    finally:
        asyncio.run(_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- one backend ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options."""

    backends: tuple[str, ...]
    duration: float
    warmup: float
    connections: int
    py_spy_dir: Path | None
    pg_dsn: str


def provision(env: dict[str, str]) -> str:
    """Schema, organisation, user and token through the real CLI; returns the token."""
    run_cli(["db", "upgrade"], env=env)
    run_cli(["org", "add", "Bench Hospital", "--kind", "hospital"], env=env)
    run_cli(
        [
            "user",
            "add",
            "bench",
            "--org",
            "Bench Hospital",
            "--role",
            "specialist",
            "--specialty",
            "cardiology",
            "--password-stdin",
        ],
        env=env,
        stdin=BENCH_PASSWORD + "\n",
    )
    token = run_cli(["token", "create", "bench"], env=env).strip()
    if not token or "\n" in token:
        raise RuntimeError(f"unexpected output of `doorstep token create`: {token!r}")
    return token


def _profile(
    options: Options, backend: str, pid: int, wrk: str, url: str, token: str, cores: Cores
) -> None:
    """Record the server's stacks with py-spy during a separate, unmeasured load run."""
    spy = py_spy_path()
    if spy is None or options.py_spy_dir is None:
        raise RuntimeError("py-spy is not installed")
    options.py_spy_dir.mkdir(parents=True, exist_ok=True)
    out = options.py_spy_dir / f"{backend}.txt"
    prefix = ["taskset", "-c", cores.load] if cores.load is not None else []
    seconds = max(1, round(options.duration))
    command = [*prefix, spy, "record", "--format", "raw", "--threads", "-r", "250"]
    command += ["-d", str(seconds), "-p", str(pid), "-o", str(out)]
    recorder = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        time.sleep(0.5)
        run_wrk(wrk, url, token, cores=cores, connections=options.connections, seconds=seconds)
    finally:
        try:
            recorder.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()


def measure(backend: str, options: Options, wrk: str, cores: Cores) -> dict[str, Any]:
    """Provision, serve and load one backend; its JSON figures."""
    with tempfile.TemporaryDirectory(prefix=f"doorstep-bench-{backend}-") as tmp:
        data_dir = Path(tmp) / "data"
        env = clean_env(DOORSTEP_DATA_DIR=str(data_dir), DOORSTEP_LOG_LEVEL="WARNING")
        if backend == "postgresql":
            with postgres_database(options.pg_dsn) as url:
                env["DOORSTEP_DATABASE_URL"] = url
                return _serve_and_load(backend, env, Path(tmp), options, wrk, cores)
        return _serve_and_load(backend, env, Path(tmp), options, wrk, cores)


def _serve_and_load(
    backend: str, env: dict[str, str], tmp: Path, options: Options, wrk: str, cores: Cores
) -> dict[str, Any]:
    token = provision(env)
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    log_path = tmp / "server.log"
    args = ["serve", "--host", LOOPBACK, "--port", str(port), "--dicom-port", "0"]
    with server_process(args, env=env, log_path=log_path, pin=cores.server) as server:
        try:
            wait_ready(f"{base}/readyz", server, timeout=60, poll=0.1)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{log_tail(log_path)}") from None
        status = http_status(f"{base}{PATH}", headers={"Authorization": f"Bearer {token}"})
        if status != 200:
            raise RuntimeError(f"GET {PATH} with the token answered {status}")
        url = f"{base}{PATH}"
        connections = options.connections
        if options.warmup > 0:
            run_wrk(wrk, url, token, cores=cores, connections=connections, seconds=options.warmup)
        result = run_wrk(
            wrk, url, token, cores=cores, connections=connections, seconds=options.duration
        )
        if options.py_spy_dir is not None:
            _profile(options, backend, server.pid, wrk, url, token, cores)
        if server.poll() is not None:
            raise RuntimeError(f"the server died during the run\n{log_tail(log_path)}")
    return result.as_json()


def parse_args(argv: Sequence[str] | None) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="after measuring, record py-spy raw stacks of the server under load into DIR",
    )
    args = parser.parse_args(argv)
    return Options(
        backends=backends(parser, args.backends),
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        py_spy_dir=args.py_spy,
        pg_dsn=os.environ.get("BENCH_PG_DSN", DEFAULT_PG_DSN),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one JSON line; exit 1 when a backend failed."""
    options = parse_args(argv)
    wrk = ensure_wrk()
    cores = pick_cores()
    figures: dict[str, Any] = {"benchmark": "api_auth"}
    failed = False
    for backend in options.backends:
        try:
            figures[backend] = measure(backend, options, wrk, cores)
        except Exception as error:  # reported in the JSON line; the other backend still runs
            failed = True
            figures[backend] = {"error": str(error).strip().splitlines()[0][:300]}
            print(f"api_auth: {backend}: {error}", file=sys.stderr)
    figures.update(
        {
            "cores_for_server": 1 if cores.server is not None else None,
            "connections": options.connections,
            "duration_s": int(options.duration)
            if options.duration.is_integer()
            else options.duration,
            "endpoint": f"GET {PATH}",
        }
    )
    print(json.dumps(figures), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
