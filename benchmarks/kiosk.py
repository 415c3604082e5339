"""The kiosk: "see an expert now" → first remote video frame, page load, a scripted visit.

Against a real `doorstep serve` process on free loopback ports, with a fresh data directory
(SQLite, or a fresh PostgreSQL database dropped afterwards), the corner, its kiosk device,
an on-duty cardiologist and an admin written straight to the database:

- **expert_now** (aiortc kiosk client): `--visits` times, the kiosk checks a person in and
  posts an urgent blood pressure; the clock starts when POST …/queue is sent. A scripted
  cardiologist, listening on their events socket, accepts each `consult.offered` at once
  and joins the call (`server.consults.client.ConsultClient`, the test pattern); the kiosk
  learns of the accept on its events socket, joins as the kiosk (no lobby) and the figure
  is the first remote video frame at the kiosk. p50/p95 in ms. No STUN (loopback).
- **chromium** (`--chromium`): the kiosk page in Debian's Chromium at 1080x1920 with a
  fake camera: page load → interactive (the `kiosk:ready` performance mark of
  kiosk-app.mjs, from navigation start), a scripted visit from the first tap to the vitals
  submitted (language, identify, number, birth date, consent, blood pressure: screens and
  taps counted), and "talk to a doctor now" → the specialist's first video frame on the
  kiosk screen, the same scripted cardiologist accepting.

Prints one JSON line:
{"benchmark": "kiosk", "backend": "sqlite", "expert_now": {"visits": 10, "p50_ms": …,
 "p95_ms": …}, "chromium": {…} | null, "targets": {…}}

Usage: python benchmarks/kiosk.py [--backend sqlite|postgresql] [--visits 10] [--chromium]
Environment: BENCH_PG_DSN (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))

from _harness import LOOPBACK, clean_env, external_process, free_port, log_tail, wait_ready  # noqa: E402
from api_auth import DEFAULT_PG_DSN, postgres_database  # noqa: E402

SECRET = "benchmark-secret-key-" + "k" * 16
TARGETS = {
    "expert_now_to_first_frame_p50_ms": 2000.0,
    "page_load_to_interactive_ms": 1000.0,
    "visit_flow_s": 300.0,
}
WAIT = 60.0


@dataclass(frozen=True, slots=True)
class Network:
    """The bench's kiosk and cardiologist tokens."""

    kiosk: str
    specialist: str


async def provision(database_url: str, data_dir: Path) -> Network:
    """Schema, a hospital and a corner, an on-duty cardiologist and a kiosk device."""
    from server import db
    from server.accounts import service as accounts
    from server.consults.models import Duty
    from server.identity import OrgKind, Role
    from server.settings import Settings

    settings = Settings(database_url=database_url, data_dir=data_dir, secret_key=SECRET)
    engine = db.create_engine(settings)
    try:
        await db.upgrade(engine)
        async with db.create_sessionmaker(engine)() as session, session.begin():
            hospital = await accounts.add_org(
                session=session, name="Bench Hospital", kind=OrgKind.HOSPITAL
            )
            corner = await accounts.add_org(
                session=session, name="Bench Corner", kind=OrgKind.CORNER
            )
            cardio = await accounts.add_user(
                session=session,
                username="cardio",
                display_name="Dr Bench",
                org=hospital,
                role=Role.SPECIALIST,
                password=None,
                specialties=("cardiology",),
            )
            kiosk = await accounts.add_user(
                session=session, username="kiosk", org=corner, role=Role.KIOSK, password=None
            )
            session.add(Duty(user_id=cardio.id, on_duty=True))
            tokens = [
                (await accounts.create_token(session=session, user=u)).token
                for u in (kiosk, cardio)
            ]
        return Network(*tokens)
    finally:
        await engine.dispose()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _events(http: Any, token: str) -> AsyncIterator[dict[str, Any]]:
    """The events of a user's socket, after its `ready`."""
    async with http.ws_connect("/api/v1/events", headers=_auth(token)) as socket:
        async for frame in socket:
            message = json.loads(frame.data)
            yield message["event"]


@contextlib.asynccontextmanager
async def specialist(url: str, network: Network) -> AsyncIterator[None]:
    """A cardiologist who accepts every offer at once and joins its call (test pattern)."""
    import aiohttp

    from server.consults.client import ConsultClient

    calls: dict[int, ConsultClient] = {}
    answering: set[asyncio.Task[None]] = set()
    ready = asyncio.Event()

    async def answer(http: Any, consult_id: int) -> None:
        async with http.post(
            f"/api/v1/consults/{consult_id}/accept", headers=_auth(network.specialist)
        ) as accepted:
            if accepted.status != 200:
                return
        host = ConsultClient(url, network.specialist, consult_id, auto_admit=True, timeout=WAIT)
        calls[consult_id] = host
        await host.join()

    async def listen() -> None:
        async with aiohttp.ClientSession(url) as http:
            async for event in _events(http, network.specialist):
                if event["type"] == "ready":
                    ready.set()
                elif event["type"] == "consult.offered":
                    task = asyncio.ensure_future(answer(http, int(event["consult"]["id"])))
                    answering.add(task)
                    task.add_done_callback(answering.discard)
                elif event["type"] == "consult.ended":
                    host = calls.pop(int(event["consult"]["id"]), None)
                    if host is not None:
                        await host.leave()

    task = asyncio.ensure_future(listen())
    await asyncio.wait_for(ready.wait(), WAIT)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for host in calls.values():
            await host.leave()


async def one_visit(url: str, network: Network, n: int) -> float:
    """Check in, an urgent blood pressure, queue (the clock starts), accept, first frame."""
    import aiohttp

    from server.consults.client import ConsultClient

    async with aiohttp.ClientSession(url) as http:
        body = {"phone": f"139{n:08d}", "birth_date": "1950-01-01", "consent": True}
        async with http.post("/api/v1/kiosk/visits", json=body, headers=_auth(network.kiosk)) as r:
            visit = int((await r.json())["id"])
        path = f"/api/v1/kiosk/visits/{visit}"
        async with http.post(
            f"{path}/vitals", json={"systolic": 186, "diastolic": 96}, headers=_auth(network.kiosk)
        ) as r:
            await r.read()
        events = _events(http, network.kiosk)
        assert (await anext(events))["type"] == "ready"
        began = time.monotonic()
        async with http.post(f"{path}/queue", headers=_auth(network.kiosk)) as r:
            if r.status != 201:
                raise RuntimeError(f"queue: {r.status} {await r.text()}")
            consult_id = int((await r.json())["consult_id"])
        async for event in events:
            if event["type"] == "consult.accepted" and event["consult"]["id"] == consult_id:
                break
        await events.aclose()
        kiosk = ConsultClient(url, network.kiosk, consult_id, timeout=WAIT)
        try:
            await kiosk.join()
            await kiosk.wait_frames(1)
            assert kiosk.first_frame_at is not None
            seen = kiosk.first_frame_at - began
        finally:
            await kiosk.leave()
        async with http.post(f"{path}/finish", headers=_auth(network.kiosk)) as r:
            await r.read()
    return seen


def _ms(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 1)


async def measure_expert_now(url: str, network: Network, visits: int) -> dict[str, Any]:
    """`visits` walk-ins one after the other; p50/p95 of queue → first frame at the kiosk."""
    async with specialist(url, network):
        found = [await one_visit(url, network, n) for n in range(visits)]
    return {
        "visits": visits,
        "peers": "aiortc kiosk client <-> aiortc specialist",
        "stun": False,
        "p50_ms": _ms(found, 0.5),
        "p95_ms": _ms(found, 0.95),
        "max_ms": round(max(found) * 1000, 1),
        "mean_ms": round(statistics.fmean(found) * 1000, 1),
        "meets_target": _ms(found, 0.5) < TARGETS["expert_now_to_first_frame_p50_ms"],
    }


def _serve(database_url: str, data_dir: Path, log: Path) -> tuple[Any, str]:
    env = clean_env(
        DOORSTEP_DATABASE_URL=database_url,
        DOORSTEP_DATA_DIR=str(data_dir),
        DOORSTEP_SECRET_KEY=SECRET,
        DOORSTEP_LOG_JSON="false",
        DOORSTEP_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
    )
    port = free_port()
    command = [sys.executable, "-m", "server.cli", "serve", "--host", LOOPBACK]
    command += ["--port", str(port), "--dicom-port", "0"]
    return external_process(command, env=env, log_path=log), f"http://{LOOPBACK}:{port}"


CHROMIUM_FLAGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
)
FIRST_FRAME = """() => [...document.querySelectorAll('.kiosk-call-tile video')].some(
    (v) => v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0)"""
READY = """() => new Promise((done) => {
  const seen = () => document.querySelector('[data-kiosk-ready]');
  if (seen()) return done(performance.now());
  new MutationObserver((_, observer) => {
    if (seen()) { observer.disconnect(); done(performance.now()); }
  }).observe(document.documentElement, { attributes: true, subtree: true });
})"""


class Taps:
    """A kiosk page driven by taps (clicks), counting them and the screens passed."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.taps = 0
        self.screens: list[str] = []

    async def tap(self, selector: str) -> None:
        """Tap one visible control."""
        await self.page.locator(f"{selector}:visible").first.click()
        self.taps += 1

    async def keys(self, screen: str, text: str) -> None:
        """Type on the screen's own keypad."""
        for key in text:
            await self.tap(f'[data-screen="{screen}"] [data-key="{key}"]')

    async def on(self, screen: str) -> None:
        """Wait until the app shows this screen."""
        await self.page.wait_for_selector(
            f'[data-module=kiosk-app][data-current="{screen}"]', timeout=WAIT * 1000
        )
        self.screens.append(screen)


async def _chromium(url: str, network: Network, chromium: str, visits: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    loads: list[float] = []
    flows: list[float] = []
    frames: list[float] = []
    taps: Taps | None = None
    to_vitals = 0
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=list(CHROMIUM_FLAGS)
        )
        try:
            for n in range(visits):
                context = await browser.new_context(viewport={"width": 1080, "height": 1920})
                await context.add_cookies(
                    [{"name": "doorstep_kiosk", "value": network.kiosk, "url": url}]
                )
                page = await context.new_page()
                await page.goto(f"{url}/kiosk", wait_until="commit")
                loads.append(await page.evaluate(READY) / 1000)
                taps = Taps(page)
                began = time.monotonic()
                await taps.tap('[data-lang="en"]')
                await taps.on("identify")
                await taps.tap('[data-identify="phone"]')
                await taps.on("number")
                await taps.keys("number", f"137{n:08d}")
                await taps.tap('[data-screen="number"] [data-action="next"]')
                await taps.on("birth")
                await taps.keys("birth", "19500101")
                await taps.tap('[data-screen="birth"] [data-action="next"]')
                await taps.on("consent")
                await taps.tap('[data-consent="yes"]')
                await page.wait_for_selector(
                    '[data-module=kiosk-app][data-current="bp"], '
                    '[data-module=kiosk-app][data-current="welcome"]',
                    timeout=WAIT * 1000,
                )
                if await page.locator('[data-module=kiosk-app][data-current="welcome"]').count():
                    await taps.on("welcome")
                    await taps.tap('[data-screen="welcome"] [data-action="next"]')
                await taps.on("bp")
                await taps.keys("bp", "18695")
                await taps.tap('[data-entry="heart_rate"]')
                await taps.keys("bp", "80")
                async with page.expect_response(lambda r: r.url.endswith("/vitals")) as posted:
                    await taps.tap('[data-screen="bp"] [data-action="next"]')
                if (await posted.value).status != 200:
                    raise RuntimeError(f"vitals: {(await posted.value).status}")
                flows.append(time.monotonic() - began)
                to_vitals = taps.taps
                for name in ("spo2", "glucose", "temperature", "weight"):
                    await taps.on(name)
                    await taps.tap(f'[data-screen="{name}"] [data-action="skip"]')
                await taps.on("results")
                asked = time.monotonic()
                await taps.tap("[data-queue-urgent]")
                await page.wait_for_function(FIRST_FRAME, timeout=WAIT * 1000, polling=20)
                frames.append(time.monotonic() - asked)
                await taps.tap('[data-screen="call"] [data-call-end]')
                await context.close()
        finally:
            await browser.close()
    assert taps is not None
    return {
        "visits": visits,
        "viewport": "1080x1920",
        "page_load_to_interactive_p50_ms": _ms(loads, 0.5),
        "page_load_to_interactive_p95_ms": _ms(loads, 0.95),
        "check_in_to_vitals_p50_ms": _ms(flows, 0.5),
        "screens_to_vitals": taps.screens[: taps.screens.index("bp") + 1],
        "taps_to_vitals": to_vitals,
        "taps_whole_visit": taps.taps,
        "talk_now_to_first_frame_p50_ms": _ms(frames, 0.5),
        "talk_now_to_first_frame_p95_ms": _ms(frames, 0.95),
        "meets_targets": _ms(loads, 0.5) < TARGETS["page_load_to_interactive_ms"]
        and _ms(frames, 0.5) < TARGETS["expert_now_to_first_frame_p50_ms"],
    }


def measure_chromium(url: str, network: Network, visits: int) -> dict[str, Any]:
    """The kiosk page in Chromium (see the module's docstring), the scripted cardiologist
    accepting."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {"error": "Chromium is not installed (apt-get install chromium)"}

    async def measure() -> dict[str, Any]:
        async with specialist(url, network):
            return await _chromium(url, network, chromium, visits)

    return asyncio.run(measure())


def run(options: argparse.Namespace, database_url: str) -> dict[str, Any]:
    """Provision, serve and measure on one database; the JSON figures."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-kiosk-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        if options.backend == "sqlite":
            database_url = f"sqlite+aiosqlite:///{data_dir / 'doorstep.db'}"
        network = asyncio.run(provision(database_url, data_dir))
        log = Path(tmp) / "server.log"
        served, url = _serve(database_url, data_dir, log)
        with served as process:
            try:
                wait_ready(f"{url}/readyz", process, timeout=90, poll=0.1)
                figures["expert_now"] = asyncio.run(
                    measure_expert_now(url, network, options.visits)
                )
                if options.chromium:
                    figures["chromium"] = measure_chromium(url, network, options.visits)
            except Exception as error:
                raise RuntimeError(f"{error}\n{log_tail(log)}") from error
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one JSON line; exit 1 when a part failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--visits", type=int, default=10)
    parser.add_argument("--chromium", action="store_true")
    parser.add_argument("--pg-dsn", default=os.environ.get("BENCH_PG_DSN", DEFAULT_PG_DSN))
    options = parser.parse_args(argv)
    figures: dict[str, Any] = {"benchmark": "kiosk", "backend": options.backend}
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
        print(f"kiosk: {error}", file=sys.stderr)
    figures.setdefault("chromium", None)
    figures.update({"cpus": os.cpu_count(), "targets": TARGETS})
    print(json.dumps(figures), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
