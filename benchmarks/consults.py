"""Video consults: accept → first remote video frame, and what one signaling process holds.

Two measurements, each against its own real `doorstep serve` process on free loopback
ports, with a fresh data directory (SQLite, or a fresh PostgreSQL database
`doorstep_bench_<random>` dropped afterwards), users and tokens written straight to the
database:

- **calls** (aiortc ↔ aiortc): `--calls` times, a GP asks for a consult with a named
  specialist, the specialist accepts (POST …/accept, the clock starts when it is sent),
  then both join with `server.consults.client.ConsultClient` (the specialist admits the
  knock at once) and stream the test pattern. Figures: accept → first remote video frame
  at the GP, at the specialist, and on both sides (the later of the two), p50/p95 in ms.
  STUN is skipped (loopback; no ICE servers are configured).
- **signaling**: `--rooms` accepted consults, two sockets each (specialist and GP, the
  GP auto-admitted), opened by `--workers` client processes (the client side is the
  bottleneck on a small machine: one Python process cannot drive 5,000 sockets and their
  messages as fast as the server relays them). Once every socket has joined, the figures
  of the server process are read (open sockets by its own gauge, resident memory, file
  descriptors); then, for each of `--rates` (messages a second in all) during `--seconds`,
  the peers send candidate messages to each other (round-robin over the sockets), each
  carrying its send time (`time.monotonic_ns()`, one clock for all processes on Linux);
  relay latency is receive time - send time, p50/p99 per rate, with any message lost.
  `ulimit -n` is raised to its hard limit (servers and workers inherit it).
- **chromium**: a place for Chromium ↔ Chromium (the browser call page, tests/e2e);
  `--chromium` reports it as not measured until `measure_chromium` is written.

Prints one JSON line:
{"benchmark": "consults", "backend": "sqlite", "calls": {"calls": 20, "both_p50_ms": …,
 "both_p95_ms": …, "gp_p50_ms": …, "host_p50_ms": …, …}, "signaling": {"sockets_target":
 5000, "sockets_joined": …, "server_websockets_gauge": …, "relay_p99_ms": …, …},
 "chromium": null, "targets": {…}}

Usage: python benchmarks/consults.py [--backend sqlite|postgresql] [--calls 20]
       [--rooms 2500] [--workers 2] [--rates 250,500,1000,2000] [--seconds 10]
       [--only calls|signaling]
       [--chromium]
Environment: BENCH_PG_DSN (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))

from _harness import (  # noqa: E402
    LOOPBACK,
    clean_env,
    external_process,
    free_port,
    log_tail,
    wait_ready,
)
from api_auth import DEFAULT_PG_DSN, postgres_database  # noqa: E402

SECRET = "benchmark-secret-key-" + "x" * 16
BENCH_PASSWORD = "bench-password-1"
"""The bench users' password (the Chromium pages sign in with it)."""
TARGETS = {
    "aiortc_accept_to_frame_p50_ms": 300.0,
    "chromium_accept_to_frame_p50_ms": 1000.0,
    "signaling_sockets": 5000,
    "relay_p99_ms": 50.0,
}
CANDIDATE = "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host"
GC_WATCH = """
import gc, sys, time
started = [0.0]
def watch(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - started[0]) * 1000
    if ms >= 20:
        print(f"GC-PAUSE at={time.monotonic():.3f} gen={info['generation']} ms={ms:.1f}",
              file=sys.stderr, flush=True)
gc.callbacks.append(watch)
from server.cli import main
sys.exit(main())
"""
"""`doorstep serve` with a note in its log of every garbage collection of 20 ms or more."""
WORST: dict[int, tuple[int, int]] = {}
"""A worker's slowest relay of each phase: (latency ns, send time ns)."""
CONNECT_AT_ONCE = 64
"""Sockets a worker opens at the same time (the server's listen backlog is 128)."""


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options."""

    backend: str
    calls: int
    rooms: int
    workers: int
    rates: tuple[float, ...]
    seconds: float
    only: str | None
    chromium: bool
    pg_dsn: str


@dataclass(frozen=True, slots=True)
class Network:
    """What the setup wrote: tokens, the patient, the accepted consults of the signaling part."""

    gp: str
    specialist: str
    admin: str
    patient_id: int
    consults: list[int]


# --- setup, straight to the database ---------------------------------------------------


async def provision(database_url: str, data_dir: Path, *, rooms: int) -> Network:
    """Schema, a clinic and a hospital, a GP, a cardiologist, an admin, a patient, consults."""
    from sqlalchemy import insert

    from server import db
    from server.accounts import service as accounts
    from server.consults.models import Consult, ConsultStatus
    from server.identity import OrgKind, Role
    from server.patients.models import Patient
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
            people = {}
            for name, org, role, specialties in (
                ("gp", clinic, Role.GP, ()),
                ("cardio", hospital, Role.SPECIALIST, ("cardiology",)),
                ("admin", hospital, Role.ADMIN, ()),
            ):
                user = await accounts.add_user(
                    session=session,
                    username=name,
                    org=org,
                    role=role,
                    password=BENCH_PASSWORD,
                    specialties=specialties,
                )
                token = (await accounts.create_token(session=session, user=user)).token
                people[name] = (user.id, token)
            patient = Patient(
                org_id=clinic.id,
                name="Bench^Patient",
                birth_date=date(1970, 1, 1),
                sex="F",
                identifier="B-1",
            )
            session.add(patient)
            await session.flush()
            now = db.utcnow()
            rows = [
                {
                    "org_id": clinic.id,
                    "patient_id": patient.id,
                    "requested_by": people["gp"][0],
                    "specialty": "cardiology",
                    "reason": f"benchmark room {n}",
                    "status": ConsultStatus.ACCEPTED.value,
                    "specialist_id": people["cardio"][0],
                    "created_at": now,
                    "accepted_at": now,
                }
                for n in range(rooms)
            ]
            ids = []
            if rows:
                found = await session.execute(insert(Consult).returning(Consult.id), rows)
                ids = sorted(int(i) for i in found.scalars())
        return Network(people["gp"][1], people["cardio"][1], people["admin"][1], patient.id, ids)
    finally:
        await engine.dispose()


# --- figures ---------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _ms(values: Sequence[float], fraction: float) -> float:
    return round(percentile(values, fraction) * 1000, 1)


def process_figures(pid: int) -> dict[str, int | None]:
    """Resident memory (KiB), threads and open file descriptors of a process (Linux /proc)."""
    found: dict[str, int | None] = {"rss_kib": None, "threads": None, "open_fds": None}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                found["rss_kib"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                found["threads"] = int(line.split()[1])
    with contextlib.suppress(OSError):
        found["open_fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return found


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy(before: float | None, after: float | None, seconds: float) -> float | None:
    """CPU use of a process over an interval, in percent of one core."""
    if before is None or after is None or seconds <= 0:
        return None
    return round((after - before) * 100 / seconds, 1)


def gauge(url: str, admin: str, name: str) -> float | None:
    """One unlabelled value of the server's /metrics (admin token)."""
    import urllib.request

    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {admin}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


# --- calls: accept → first remote video frame ------------------------------------------


async def one_call(url: str, network: Network) -> dict[str, float]:
    """Ask, accept (the clock starts), join both, wait for a remote frame at each; seconds."""
    import aiohttp

    from server.consults.client import ConsultClient

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async with aiohttp.ClientSession(url) as http:
        body = {"patient_id": network.patient_id, "specialist": "cardio", "reason": "bench"}
        async with http.post("/api/v1/consults", json=body, headers=auth(network.gp)) as made:
            if made.status != 201:
                raise RuntimeError(f"POST /api/v1/consults: {made.status} {await made.text()}")
            consult_id = int((await made.json())["id"])
        began = time.monotonic()
        path = f"/api/v1/consults/{consult_id}"
        async with http.post(f"{path}/accept", headers=auth(network.specialist)) as accepted:
            if accepted.status != 200:
                raise RuntimeError(f"accept: {accepted.status} {await accepted.text()}")
        accepted_at = time.monotonic()
        host = ConsultClient(url, network.specialist, consult_id, auto_admit=True, timeout=60)
        gp = ConsultClient(url, network.gp, consult_id, timeout=60)
        try:
            await asyncio.gather(host.join(), gp.join())
            await asyncio.gather(host.wait_frames(1), gp.wait_frames(1))
            at_gp, at_host = gp.first_frame_at, host.first_frame_at
            assert at_gp is not None
            assert at_host is not None
        finally:
            await asyncio.gather(gp.leave(), host.leave())
        async with http.post(f"{path}/end", headers=auth(network.specialist)) as ended:
            await ended.read()
    return {
        "gp": at_gp - began,
        "host": at_host - began,
        "both": max(at_gp, at_host) - began,
        "accept": accepted_at - began,
    }


async def measure_calls(url: str, network: Network, calls: int) -> dict[str, Any]:
    """`calls` consults one after the other; p50/p95 of accept → first frame."""
    found = [await one_call(url, network) for _ in range(calls)]
    figures: dict[str, Any] = {"calls": calls, "peers": "aiortc <-> aiortc", "stun": False}
    for side in ("both", "gp", "host", "accept"):
        values = [f[side] for f in found]
        figures[f"{side}_p50_ms"] = _ms(values, 0.50)
        figures[f"{side}_p95_ms"] = _ms(values, 0.95)
    figures["both_max_ms"] = round(max(f["both"] for f in found) * 1000, 1)
    figures["meets_target"] = figures["both_p50_ms"] < TARGETS["aiortc_accept_to_frame_p50_ms"]
    return figures


CHROMIUM_FLAGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
)
FIRST_FRAME = """() => [...document.querySelectorAll('.call-tile video')].some(
    (v) => v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0)"""


def measure_chromium(url: str, network: Network, calls: int) -> dict[str, Any]:
    """Chromium ↔ Chromium accept → first decoded frame on both pages, p50/p95.

    Two signed-in pages (fake camera and microphone) in one headless Chromium; after the
    accept each opens the call page and presses Join (the server lets the clinic's GP in at
    once: DOORSTEP_CONSULT_AUTO_ADMIT), and each page's clock stops when a remote video
    element has decoded a frame (polled every animation frame). Page loads, getUserMedia,
    ICE and DTLS are all inside; the page's own marks give the timeline.
    """
    chromium = shutil.which("chromium")
    if chromium is None:
        return {"measured": False, "why": "chromium is not installed"}
    return asyncio.run(_chromium_calls(url, network, calls, chromium))


async def _sign_in(page: Any, url: str, username: str) -> None:
    await page.goto(f"{url}/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(BENCH_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{url}/")


TIMELINE = """() => Object.fromEntries(performance.getEntriesByType("mark")
    .filter((m) => m.name.startsWith("call:")).map((m) => [m.name.slice(5), m.startTime]))"""
"""The call page's marks (consult-call.mjs): ms since the page's navigation began."""


async def _join(page: Any, url: str, consult_id: int) -> tuple[float, dict[str, float]]:
    """Open the call page, press Join; when a remote frame was decoded (monotonic), and the
    page's timeline."""
    await page.goto(f"{url}/consults/{consult_id}")
    await page.get_by_role("button", name="Join", exact=True).click()
    await page.wait_for_function(FIRST_FRAME, polling="raf", timeout=60_000)
    at = time.monotonic()
    return at, await page.evaluate(TIMELINE)


async def _chromium_calls(url: str, network: Network, calls: int, chromium: str) -> dict[str, Any]:
    import aiohttp
    from playwright.async_api import async_playwright

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    found: list[dict[str, float]] = []
    timelines: dict[str, list[dict[str, float]]] = {"gp": [], "host": []}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=list(CHROMIUM_FLAGS)
        )
        try:
            pages = {}
            for who in ("gp", "cardio"):
                context = await browser.new_context()
                pages[who] = await context.new_page()
                await _sign_in(pages[who], url, who)
            async with aiohttp.ClientSession(url) as http:
                for _ in range(calls):
                    body = {"patient_id": network.patient_id, "specialist": "cardio", "reason": "b"}
                    async with http.post(
                        "/api/v1/consults", json=body, headers=auth(network.gp)
                    ) as made:
                        consult_id = int((await made.json())["id"])
                    began = time.monotonic()
                    path = f"/api/v1/consults/{consult_id}"
                    async with http.post(f"{path}/accept", headers=auth(network.specialist)) as ok:
                        if ok.status != 200:
                            raise RuntimeError(f"accept: {ok.status} {await ok.text()}")
                    (at_host, host_marks), (at_gp, gp_marks) = await asyncio.gather(
                        _join(pages["cardio"], url, consult_id),
                        _join(pages["gp"], url, consult_id),
                    )
                    found.append(
                        {
                            "gp": at_gp - began,
                            "host": at_host - began,
                            "both": max(at_gp, at_host) - began,
                        }
                    )
                    timelines["gp"].append(gp_marks)
                    timelines["host"].append(host_marks)
                    async with http.post(f"{path}/end", headers=auth(network.specialist)) as ended:
                        await ended.read()
                    for page in pages.values():
                        await page.goto("about:blank")
        finally:
            await browser.close()
    figures: dict[str, Any] = {
        "measured": True,
        "calls": calls,
        "peers": "Chromium <-> Chromium",
        "auto_admit": True,
    }
    for side in ("both", "gp", "host"):
        values = [f[side] for f in found]
        figures[f"{side}_p50_ms"] = _ms(values, 0.50)
        figures[f"{side}_p95_ms"] = _ms(values, 0.95)
    figures["meets_target"] = figures["both_p50_ms"] < TARGETS["chromium_accept_to_frame_p50_ms"]
    figures["timeline_p50_ms"] = {
        side: {
            name: _ms([t[name] / 1000 for t in marks if name in t], 0.50)
            for name in sorted({n for t in marks for n in t}, key=lambda n: marks[0].get(n, 1e9))
        }
        for side, marks in timelines.items()
        if marks
    }
    return figures


# --- signaling capacity: one client process ------------------------------------------


class Side:
    """One socket of a worker, read from the moment it opens (so that pings are answered)."""

    def __init__(self, socket: Any, latencies: dict[int, list[float]]) -> None:
        self.socket = socket
        self.peer = ""
        self.other = ""
        self.in_room = asyncio.Event()
        self.paired = asyncio.Event()
        self.latencies = latencies
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        """Note the welcome and the peers; time each candidate (by phase) until it closes."""
        from aiohttp import WSMsgType

        while True:
            frame = await self.socket.receive()
            now = time.monotonic_ns()
            if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if frame.type != WSMsgType.TEXT:
                raise RuntimeError(f"the socket failed ({self.socket.close_code})")
            message = json.loads(frame.data)
            kind = message["type"]
            if kind == "candidate":
                found = message["candidate"]
                sent = int(found["sdpMid"])
                phase = self.latencies.setdefault(found["sdpMLineIndex"], [])
                phase.append((now - sent) / 1e9)
                worst = WORST.get(found["sdpMLineIndex"])
                if worst is None or now - sent > worst[0]:
                    WORST[found["sdpMLineIndex"]] = (now - sent, sent)
            elif kind == "welcome":
                self.peer = message["peer"]
            elif kind == "peers":
                listed = [p["peer"] for p in message["peers"]]
                if self.peer in listed:
                    self.in_room.set()
                others = [p for p in listed if p != self.peer]
                if others:
                    self.other = others[0]
                    self.paired.set()
            elif kind == "error":
                raise RuntimeError(f"{message['code']}: {message['message']}")

    async def wait(self, event: asyncio.Event) -> None:
        """Wait for an event of this socket; the reader's error if it ended first."""
        waiting = asyncio.ensure_future(event.wait())
        await asyncio.wait({waiting, self.reader}, return_when=asyncio.FIRST_COMPLETED)
        if not event.is_set():
            waiting.cancel()
            raise RuntimeError(f"the socket ended before joining: {self.reader.exception()!r}")


async def _open(
    http: Any, url: str, token: str, consult_id: int, gate: asyncio.Semaphore, make: Any
) -> Side:
    async with gate:
        socket = await http.ws_connect(
            f"{url}/api/v1/consults/{consult_id}/signal",
            headers={"Authorization": f"Bearer {token}"},
        )
        side: Side = make(socket)
        await socket.send_str('{"type":"join"}')
        await side.wait(side.in_room)
        return side


async def _room(
    http: Any,
    url: str,
    tokens: tuple[str, str],
    consult_id: int,
    gate: asyncio.Semaphore,
    make: Any,
) -> tuple[Side, Side]:
    """The host's socket, then the GP's (auto-admitted); both know the other's peer id."""
    host = await _open(http, url, tokens[0], consult_id, gate, make)
    gp = await _open(http, url, tokens[1], consult_id, gate, make)
    await gp.wait(gp.paired)
    await host.wait(host.paired)
    return host, gp


def _failure(error: BaseException) -> str:
    """An exception and where it was raised, in one line."""
    import traceback

    status = getattr(error, "status", None)
    if status is not None:
        return f"HTTP {status}: {getattr(error, 'message', '')}"[:300]
    frames = traceback.extract_tb(error.__traceback__)
    where = ", ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames[-3:])
    return f"{error!r} at {where}"[:300]


async def _phase(sides: list[Side], latencies: dict[int, list[float]], plan: dict[str, Any]) -> str:
    """Send `rate` candidates a second for `seconds`, round-robin over the sockets; figures."""
    phase, rate, seconds = int(plan["phase"]), float(plan["rate"]), float(plan["seconds"])
    count = round(rate * seconds) if sides else 0
    interval = 1.0 / rate
    started = time.monotonic()
    for n in range(count):
        wait = started + n * interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        side = sides[n % len(sides)]
        body = {
            "type": "candidate",
            "to": side.other,
            "candidate": {
                "candidate": CANDIDATE,
                "sdpMid": str(time.monotonic_ns()),
                "sdpMLineIndex": phase,
            },
        }
        await side.socket.send_str(json.dumps(body, separators=(",", ":")))
    sending = time.monotonic() - started
    deadline = time.monotonic() + 30
    while len(latencies.get(phase, [])) < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    found = latencies.get(phase, [])
    result = {
        "phase": phase,
        "sent": count,
        "received": len(found),
        "send_s": round(sending, 3),
        "latencies_ms": [round(v * 1000, 3) for v in found],
        "worst_sent_at_s": round(WORST[phase][1] / 1e9 - started, 3) if phase in WORST else None,
    }
    return json.dumps(result)


async def worker(config: dict[str, Any]) -> None:
    """A client process: join its rooms, say `ready`, run each phase it is sent, then close."""
    import aiohttp

    url, tokens, rooms = config["url"], tuple(config["tokens"]), config["rooms"]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, connect=120)
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    latencies: dict[int, list[float]] = {}

    def make(socket: Any) -> Side:
        return Side(socket, latencies)

    async def room(consult_id: int) -> tuple[Side, Side]:
        return await _room(http, url, tokens, consult_id, gate, make)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        began = time.monotonic()
        joined = await asyncio.gather(*(room(c) for c in rooms), return_exceptions=True)
        pairs = [p for p in joined if isinstance(p, tuple)]
        failures = [_failure(p) for p in joined if not isinstance(p, tuple)]
        sides = [s for pair in pairs for s in pair]
        ready = {
            "ready": len(sides),
            "failed": len(failures),
            "join_s": round(time.monotonic() - began, 2),
            "errors": failures[:3],
        }
        print(json.dumps(ready), flush=True)
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if not line or line == "close":
                break
            print(await _phase(sides, latencies, json.loads(line)), flush=True)
        dropped = sum(1 for s in sides if s.reader.done() and s.reader.exception() is not None)
        await asyncio.gather(*(s.socket.close() for s in sides), return_exceptions=True)
        print(json.dumps({"closed": len(sides), "failed_during": dropped}), flush=True)


# --- signaling capacity: the driver -----------------------------------------------------


@contextlib.contextmanager
def _workers(configs: list[dict[str, Any]], env: dict[str, str]) -> Iterator[list[Any]]:
    processes = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in configs
    ]
    try:
        for process, config in zip(processes, configs, strict=True):
            assert process.stdin is not None
            process.stdin.write(json.dumps(config) + "\n")
            process.stdin.flush()
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def _line(process: Any) -> dict[str, Any]:
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"a client process exited ({process.wait()}) before it reported")
    found: dict[str, Any] = json.loads(line)
    return found


def _relay_figures(rate: float, results: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [v / 1000 for r in results for v in r["latencies_ms"]]
    sent = sum(r["sent"] for r in results)
    send_s = max(r["send_s"] for r in results)
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(sent / send_s, 1) if send_s else None,
        "sent": sent,
        "lost": sent - len(latencies),
        "p50_ms": _ms(latencies, 0.50),
        "p99_ms": _ms(latencies, 0.99),
        "max_ms": _ms(latencies, 1.0),
        "over_target_share": round(
            sum(1 for v in latencies if v * 1000 >= TARGETS["relay_p99_ms"]) / len(latencies), 4
        )
        if latencies
        else None,
        "worst_sent_at_s": [r["worst_sent_at_s"] for r in results],
    }


def measure_signaling(
    url: str, network: Network, options: Options, server: tuple[int, Path], env: dict[str, str]
) -> dict[str, Any]:
    """Hold 2 x rooms sockets over `workers` processes; relay at each rate; the figures."""
    rooms = network.consults
    share = [rooms[n :: options.workers] for n in range(options.workers)]
    configs = [
        {"url": url, "tokens": [network.specialist, network.gp], "rooms": part} for part in share
    ]
    server_pid, log = server
    idle = process_figures(server_pid)
    steps = []
    join_cpu = cpu_seconds(server_pid)
    joining = time.monotonic()
    with _workers(configs, env) as processes:
        ready = [_line(p) for p in processes]
        join_gc = (joining, time.monotonic())
        join_cpu_s = (cpu_seconds(server_pid) or 0.0) - (join_cpu or 0.0)
        held = process_figures(server_pid)
        websockets = gauge(url, network.admin, "doorstep_websockets_open")
        for phase, rate in enumerate(options.rates):
            plan = {"phase": phase, "rate": rate / options.workers, "seconds": options.seconds}
            began, server_cpu = time.monotonic(), cpu_seconds(server_pid)
            clients_cpu = [cpu_seconds(p.pid) for p in processes]
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(json.dumps(plan) + "\n")
                process.stdin.flush()
            step = _relay_figures(rate, [_line(p) for p in processes])
            elapsed = time.monotonic() - began
            step["server_gc_pauses"] = (began, time.monotonic())
            step["server_cpu_percent"] = _busy(server_cpu, cpu_seconds(server_pid), elapsed)
            step["client_cpu_percent"] = [
                _busy(before, cpu_seconds(p.pid), elapsed)
                for before, p in zip(clients_cpu, processes, strict=True)
            ]
            steps.append(step)
        after = process_figures(server_pid)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("close\n")
            process.stdin.flush()
        closed = [_line(p) for p in processes]
        for process in processes:
            process.wait(timeout=60)
    for step in steps:
        step["server_gc_pauses"] = gc_pauses(log, *step["server_gc_pauses"])
    joined = sum(r["ready"] for r in ready)
    good = [
        s["offered_per_s"] for s in steps if s["p99_ms"] < TARGETS["relay_p99_ms"] and not s["lost"]
    ]
    return {
        "rooms": len(rooms),
        "sockets_target": 2 * len(rooms),
        "sockets_joined": joined,
        "join_failures": sum(r["failed"] for r in ready),
        "join_errors": [e for r in ready for e in r["errors"]][:3],
        "join_s": max(r["join_s"] for r in ready),
        "server_cpu_ms_per_join": round(join_cpu_s * 1000 / joined, 2) if joined else None,
        "server_gc_pauses_while_joining": gc_pauses(log, *join_gc),
        "sockets_dropped_while_held": sum(c["failed_during"] for c in closed),
        "server_websockets_gauge": websockets,
        "server_rss_mib_idle": round((idle["rss_kib"] or 0) / 1024, 1),
        "server_rss_mib_held": round((held["rss_kib"] or 0) / 1024, 1),
        "server_rss_mib_after_relay": round((after["rss_kib"] or 0) / 1024, 1),
        "server_open_fds_held": held["open_fds"],
        "client_processes": options.workers,
        "bottleneck_note": "sockets opened and driven by client_processes separate Python "
        "processes on the same machine as the server (latency includes their scheduling)",
        "relay_seconds_per_rate": options.seconds,
        "relay": steps,
        "relay_p99_ms": steps[0]["p99_ms"] if steps else None,
        "relay_p99_ms_at_per_s": steps[0]["offered_per_s"] if steps else None,
        "max_rate_per_s_with_p99_under_target": max(good) if good else None,
        "meets_target": joined >= TARGETS["signaling_sockets"] and bool(good),
    }


# --- one run ---------------------------------------------------------------------------


def raise_file_limit() -> int:
    """Raise the soft limit of open files to the hard one (children inherit it); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _serve(
    database_url: str, data_dir: Path, log: Path, **settings: str
) -> tuple[Any, str, dict[str, str]]:
    env = clean_env(
        DOORSTEP_DATABASE_URL=database_url,
        DOORSTEP_DATA_DIR=str(data_dir),
        DOORSTEP_SECRET_KEY=SECRET,
        DOORSTEP_LOG_JSON="false",
        DOORSTEP_LOG_LEVEL="WARNING",
        DOORSTEP_READING_WATCH_SECONDS="3600",
        PYTHONPATH=str(REPO),
        **settings,
    )
    port = free_port()
    args = ["serve", "--host", LOOPBACK, "--port", str(port), "--dicom-port", "0"]
    command = [sys.executable, "-c", GC_WATCH, *args]
    return external_process(command, env=env, log_path=log), f"http://{LOOPBACK}:{port}", env


def gc_pauses(log: Path, since: float, until: float) -> dict[str, Any]:
    """The server's garbage collections of 20 ms or more between two time.monotonic() times."""
    found = []
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("GC-PAUSE at="):
                fields = dict(f.split("=", 1) for f in line.split()[1:])
                if since <= float(fields["at"]) <= until:
                    found.append(float(fields["ms"]))
    return {"count": len(found), "max_ms": max(found) if found else None}


def _problems(log: Path) -> dict[str, Any]:
    """How many warnings and errors the server logged, and the first few."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return {"count": None, "first": []}
    found = [line for line in lines if "WARNING" in line or "ERROR" in line]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Timeout)\b", line)]
    return {
        "count": len(found),
        "first": [line[:200] for line in found[:3]],
        "exceptions": dict(Counter(line[:160] for line in raised).most_common(3)),
    }


def run(options: Options, database_url: str) -> dict[str, Any]:
    """Provision, serve and measure on one database; the JSON figures."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-consults-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        if options.backend == "sqlite":
            database_url = f"sqlite+aiosqlite:///{data_dir / 'doorstep.db'}"
        rooms = options.rooms if options.only in (None, "signaling") else 0
        network = asyncio.run(provision(database_url, data_dir, rooms=rooms))
        if options.only in (None, "calls"):
            log = Path(tmp) / "server-calls.log"
            served, url, env = _serve(database_url, data_dir, log)
            with served as process:
                try:
                    wait_ready(f"{url}/readyz", process, timeout=90, poll=0.1)
                    figures["calls"] = asyncio.run(measure_calls(url, network, options.calls))
                except Exception as error:
                    raise RuntimeError(f"calls: {error}\n{log_tail(log)}") from error
        if options.only in (None, "calls") and options.chromium:
            # The clinic's GPs come straight in (DOORSTEP_CONSULT_AUTO_ADMIT): no human
            # admission inside the figure, as the aiortc host admits at once.
            log = Path(tmp) / "server-chromium.log"
            served, url, env = _serve(
                database_url, data_dir, log, DOORSTEP_CONSULT_AUTO_ADMIT="true"
            )
            with served as process:
                try:
                    wait_ready(f"{url}/readyz", process, timeout=90, poll=0.1)
                    figures["chromium"] = measure_chromium(url, network, options.calls)
                except Exception as error:
                    raise RuntimeError(f"chromium: {error}\n{log_tail(log)}") from error
        if options.only in (None, "signaling"):
            log = Path(tmp) / "server-signaling.log"
            served, url, env = _serve(
                database_url, data_dir, log, DOORSTEP_CONSULT_AUTO_ADMIT="true"
            )
            with served as process:
                try:
                    wait_ready(f"{url}/readyz", process, timeout=90, poll=0.1)
                    figures["signaling"] = measure_signaling(
                        url, network, options, (process.pid, log), env
                    )
                except Exception as error:
                    raise RuntimeError(f"signaling: {error}\n{log_tail(log)}") from error
            figures["signaling"]["server_log_problems"] = _problems(log)
    return figures


def parse_args(argv: Sequence[str] | None) -> Options:
    """Options from the command line and the environment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--calls", type=int, default=20, help="consults timed one by one")
    parser.add_argument("--rooms", type=int, default=2500, help="rooms of two sockets each")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument(
        "--rates", default="250,500,1000,2000", help="candidate messages a second, in all, per step"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of relay per rate")
    parser.add_argument("--only", choices=("calls", "signaling"), default=None)
    parser.add_argument(
        "--chromium", action="store_true", help="also Chromium <-> Chromium (measure_chromium)"
    )
    args = parser.parse_args(argv)
    try:
        rates = tuple(float(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        parser.error(f"--rates is a comma-separated list of numbers, not {args.rates!r}")
    if args.calls < 1 or args.rooms < 1 or args.workers < 1 or not rates or min(rates) <= 0:
        parser.error("--calls, --rooms, --workers and the --rates are at least 1")
    return Options(
        backend=args.backend,
        calls=args.calls,
        rooms=args.rooms,
        workers=args.workers,
        rates=rates,
        seconds=args.seconds,
        only=args.only,
        chromium=args.chromium,
        pg_dsn=os.environ.get("BENCH_PG_DSN", DEFAULT_PG_DSN),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one JSON line; exit 1 when a part failed."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments == ["--worker"]:
        asyncio.run(worker(json.loads(sys.stdin.readline())))
        return 0
    options = parse_args(arguments)
    limit = raise_file_limit()
    figures: dict[str, Any] = {"benchmark": "consults", "backend": options.backend}
    failed = False
    try:
        if options.backend == "postgresql":
            with postgres_database(options.pg_dsn) as url:
                figures.update(run(options, url))
        else:
            figures.update(run(options, ""))
    except Exception as error:  # reported in the JSON line
        failed = True
        figures["error"] = str(error).strip().splitlines()[0][:300]
        print(f"consults: {error}", file=sys.stderr)
    figures.setdefault("chromium", None)
    figures.update(
        {
            "open_files_limit": limit,
            "cpus": os.cpu_count(),
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "targets": TARGETS,
        }
    )
    print(json.dumps(figures))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
