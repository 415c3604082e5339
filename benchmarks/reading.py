"""Claims per second of "next case" with 50 concurrent readers, on SQLite and on PostgreSQL.

For each backend: a fresh data directory (and, for PostgreSQL, a fresh database
`doorstep_bench_<random>` that is dropped afterwards), the schema, a hospital and a
clinic, 50 cardiologists with bearer tokens and a queue of 10,000 reading requests on
one study (setup, written straight to the database in one transaction), then one real
`doorstep serve` process. 50 readers (one aiohttp session, one connection each) press
POST /api/v1/reading-requests/next until it answers 204. Every 200 is timed; at the end
the database is read back: every request must be claimed once (double_claims and lost
must be 0). Loopback only; every process it starts is stopped before it exits.

If the module benchmarks/_signing.py exists, its `measure()` dict is added as "signing".

Prints one JSON line:
{"benchmark": "reading", "sqlite": {"claims_per_s": ..., "p50_ms": ..., "p99_ms": ...,
 "claims": ..., "double_claims": 0, "lost": 0, "non_2xx": 0, ...}, "postgresql": {...},
 "readers": 50, "queue": 10000, "targets": {...}, "signing": {...}}

Usage: python benchmarks/reading.py [--backends sqlite,postgresql] [--readers 50]
       [--queue 10000] [--profile DIR]
--profile runs the server under cProfile and writes DIR/<backend>.prof and a summary
DIR/<backend>.txt (cumulative time, top 60) when it stops.
Environment: BENCH_PG_DSN (default postgresql://postgres@127.0.0.1:5432/postgres) is the
maintenance database used to create and drop the benchmark database.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import io
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from subprocess import Popen
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))

from _harness import (  # noqa: E402
    LOOPBACK,
    backends,
    clean_env,
    external_process,
    free_port,
    log_tail,
    server_process,
    wait_ready,
)
from api_auth import DEFAULT_PG_DSN, postgres_database  # noqa: E402

NEXT = "/api/v1/reading-requests/next"
SECRET = "benchmark-secret-key-" + "x" * 16
TARGETS = {"postgresql": 500.0, "sqlite": 300.0}
"""Claims per second the product promises with 50 readers on one server process."""


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options."""

    backends: tuple[str, ...]
    readers: int
    queue: int
    profile_dir: Path | None
    pg_dsn: str


# --- setup, straight to the database ---------------------------------------------------


async def provision(database_url: str, data_dir: Path, *, readers: int, queue: int) -> list[str]:
    """SETUP: schema, organisations, readers with tokens, one study and the queue; the tokens."""
    from sqlalchemy import insert

    from server import db
    from server.accounts import service as accounts
    from server.archive.models import Study
    from server.identity import OrgKind, Role
    from server.reading.models import Priority, ReadingRequest, Status
    from server.settings import Settings

    settings = Settings(database_url=database_url, data_dir=data_dir, secret_key=SECRET)
    engine = db.create_engine(settings)
    try:
        await db.upgrade(engine)
        async with db.create_sessionmaker(engine)() as session, session.begin():
            hospital = await accounts.add_org(
                session=session, name="Bench Hospital", kind=OrgKind.HOSPITAL
            )
            clinic = await accounts.add_org(
                session=session, name="Bench Clinic", kind=OrgKind.CLINIC
            )
            gp = await accounts.add_user(
                session=session, username="gp", org=clinic, role=Role.GP, password=None
            )
            tokens = []
            for n in range(readers):
                user = await accounts.add_user(
                    session=session,
                    username=f"reader{n:03d}",
                    org=hospital,
                    role=Role.SPECIALIST,
                    password=None,
                    specialties=("cardiology",),
                )
                tokens.append((await accounts.create_token(session=session, user=user)).token)
            study = Study(
                org_id=clinic.id,
                study_uid=f"2.25.{secrets.randbits(96)}",
                patient_name="Bench^Patient",
                study_description="Benchmark ECG",
            )
            session.add(study)
            await session.flush()
            now = db.utcnow()
            priorities = list(Priority)
            rows = [
                {
                    "org_id": clinic.id,
                    "study_id": study.id,
                    "study_uid": study.study_uid,
                    "requested_by": gp.id,
                    "specialty": "cardiology",
                    "priority": priorities[n % 3].value,
                    "priority_rank": priorities[n % 3].rank,
                    "question": f"benchmark request {n}",
                    "status": Status.WAITING.value,
                    "created_at": now,
                    "due_at": now + timedelta(hours=1, seconds=n),
                }
                for n in range(queue)
            ]
            await session.execute(insert(ReadingRequest), rows)
        return tokens
    finally:
        await engine.dispose()


async def read_back(database_url: str, data_dir: Path) -> dict[str, int]:
    """How the queue stands in the database: claimed rows, distinct holders, rows left."""
    from sqlalchemy import func, select

    from server import db
    from server.reading.models import ReadingRequest, Status
    from server.settings import Settings

    settings = Settings(database_url=database_url, data_dir=data_dir, secret_key=SECRET)
    engine = db.create_engine(settings)
    try:
        async with db.create_sessionmaker(engine)() as session:
            counts = dict(
                (
                    await session.execute(
                        select(ReadingRequest.status, func.count()).group_by(ReadingRequest.status)
                    )
                ).all()
            )
            holders = await session.scalar(
                select(func.count(func.distinct(ReadingRequest.claimed_by))).where(
                    ReadingRequest.status == Status.CLAIMED
                )
            )
        return {
            "claimed": int(counts.get(Status.CLAIMED.value, 0)),
            "waiting": int(counts.get(Status.WAITING.value, 0)),
            "holders": int(holders or 0),
        }
    finally:
        await engine.dispose()


# --- the load --------------------------------------------------------------------------


@dataclass
class Load:
    """What the readers were answered."""

    latencies: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    first: float = 0.0
    last: float = 0.0


async def _reader(session: Any, token: str, load: Load, start: asyncio.Barrier) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    await start.wait()
    while True:
        began = time.perf_counter()
        async with session.post(NEXT, headers=headers) as response:
            status = response.status
            body = await response.json() if status == 200 else await response.read()
        done = time.perf_counter()
        load.statuses[status] += 1
        if status == 204:
            return
        if status != 200:
            if load.statuses[status] > 100:
                raise RuntimeError(f"the server keeps answering {status}: {body!r:.300}")
            continue
        load.latencies.append(done - began)
        load.ids.append(int(body["id"]))
        load.last = done


async def run_load(url: str, tokens: Sequence[str]) -> Load:
    """Every reader presses "next case" until 204; timed from the common start."""
    import aiohttp

    load = Load()
    connector = aiohttp.TCPConnector(limit=len(tokens))
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:
        start = asyncio.Barrier(len(tokens) + 1)
        readers = [asyncio.create_task(_reader(session, t, load, start)) for t in tokens]
        await start.wait()
        load.first = time.perf_counter()
        await asyncio.gather(*readers)
    return load


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# --- one backend -----------------------------------------------------------------------


def _serve(
    options: Options, backend: str, env: dict[str, str], port: int, log: Path
) -> AbstractContextManager[Popen[bytes]]:
    args = ["serve", "--host", LOOPBACK, "--port", str(port), "--dicom-port", "0"]
    if options.profile_dir is None:
        return server_process(args, env=env, log_path=log)
    options.profile_dir.mkdir(parents=True, exist_ok=True)
    out = options.profile_dir / f"{backend}.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "server.cli", *args]
    return external_process(command, env=env, log_path=log)


def _summarise_profile(options: Options, backend: str) -> None:
    if options.profile_dir is None:
        return
    out = options.profile_dir / f"{backend}.prof"
    if not out.exists():
        print(f"reading: no profile written for {backend}", file=sys.stderr)
        return
    text = io.StringIO()
    stats = pstats.Stats(str(out), stream=text)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
    (options.profile_dir / f"{backend}.txt").write_text(text.getvalue())


def measure_backend(backend: str, options: Options, database_url: str) -> dict[str, Any]:
    """Provision, serve and load one backend on a fresh database; its JSON figures."""
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-reading-") as tmp:
        data_dir = Path(tmp) / "data"
        if backend == "sqlite":
            database_url = f"sqlite+aiosqlite:///{data_dir / 'doorstep.db'}"
        data_dir.mkdir()
        tokens = asyncio.run(
            provision(database_url, data_dir, readers=options.readers, queue=options.queue)
        )
        env = clean_env(
            DOORSTEP_DATABASE_URL=database_url,
            DOORSTEP_DATA_DIR=str(data_dir),
            DOORSTEP_SECRET_KEY=SECRET,
            DOORSTEP_LOG_JSON="false",
            DOORSTEP_READING_WATCH_SECONDS="3600",
            PYTHONPATH=str(REPO),  # this checkout's server, whatever the venv installed
        )
        port = free_port()
        url = f"http://{LOOPBACK}:{port}"
        log = Path(tmp) / "server.log"
        with _serve(options, backend, env, port, log) as process:
            try:
                wait_ready(f"{url}/readyz", process, timeout=90, poll=0.1)
                cpu_before = cpu_seconds(process.pid)
                load = asyncio.run(run_load(url, tokens))
                cpu_after = cpu_seconds(process.pid)
            except Exception as error:
                raise RuntimeError(f"{error}\n{log_tail(log)}") from error
        _summarise_profile(options, backend)
        stood = asyncio.run(read_back(database_url, data_dir))
    claims = len(load.ids)
    seconds = max(load.last - load.first, 1e-9)
    non_2xx = sum(n for s, n in load.statuses.items() if not 200 <= s < 300)
    rate = claims / seconds
    return {
        "claims_per_s": round(rate, 1),
        "p50_ms": round(_percentile(load.latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(load.latencies, 0.99) * 1000, 2),
        "claims": claims,
        "seconds": round(seconds, 2),
        "double_claims": claims - len(set(load.ids)),
        "lost": options.queue - len(set(load.ids)),
        "db_claimed": stood["claimed"],
        "db_waiting": stood["waiting"],
        "db_holders": stood["holders"],
        "non_2xx": non_2xx,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "server_cpu_ms_per_claim": round((cpu_after - cpu_before) * 1000 / claims, 2)
        if cpu_before is not None and cpu_after is not None and claims
        else None,
        "target_claims_per_s": TARGETS[backend],
        "meets_target": rate >= TARGETS[backend],
        "profiled": options.profile_dir is not None,
    }


def signing() -> dict[str, Any] | None:
    """The figures of benchmarks/_signing.py's measure(), when that module exists."""
    try:
        found = importlib.util.find_spec("benchmarks._signing")
    except ModuleNotFoundError:
        found = None
    if found is None:
        return None
    try:
        module = importlib.import_module("benchmarks._signing")
        return dict(module.measure())
    except Exception as error:  # reported in the JSON line; the reading figures still stand
        print(f"reading: signing: {error}", file=sys.stderr)
        return {"error": str(error).strip().splitlines()[0][:300] if str(error) else repr(error)}


def parse_args(argv: Sequence[str] | None) -> Options:
    """Options from the command line and the environment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--queue", type=int, default=10_000)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run the server under cProfile; DIR/<backend>.prof and .txt (figures then slower)",
    )
    args = parser.parse_args(argv)
    return Options(
        backends=backends(parser, args.backends),
        readers=args.readers,
        queue=args.queue,
        profile_dir=args.profile,
        pg_dsn=os.environ.get("BENCH_PG_DSN", DEFAULT_PG_DSN),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one JSON line; exit 1 when a backend failed or claimed twice."""
    options = parse_args(argv)
    figures: dict[str, Any] = {"benchmark": "reading"}
    failed = False
    for backend in options.backends:
        try:
            if backend == "postgresql":
                with postgres_database(options.pg_dsn) as url:
                    figures[backend] = measure_backend(backend, options, url)
            else:
                figures[backend] = measure_backend(backend, options, "")
            failed |= bool(figures[backend]["double_claims"] or figures[backend]["lost"])
        except Exception as error:  # reported in the JSON line; the other backend still runs
            failed = True
            figures[backend] = {"error": str(error).strip().splitlines()[0][:300]}
            print(f"reading: {backend}: {error}", file=sys.stderr)
    figures.update(
        {
            "readers": options.readers,
            "queue": options.queue,
            "server_processes": 1,
            "cpus": len(os.sched_getaffinity(0)),
            "endpoint": f"POST {NEXT}",
        }
    )
    found = signing()
    if found is not None:
        figures["signing"] = found
    print(json.dumps(figures), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
