"""Figures of the reading-room viewers (issue 9), next to Orthanc where it has the same thing.

Sections, each a function of the run's Context in SECTIONS (``--only`` picks some):

- ``rendered``: WADO-RS ``rendered`` as PNG of a 512x512 16-bit CT frame (pydicom's
  CT_small.dcm upsampled 4x with noise added, so PNG has real work; a new noise
  pattern and new UIDs per instance). N distinct instances are stored in a fresh
  Doorstep (SQLite, provisioned with the real CLI, ``doorstep serve``) and in a fresh
  Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``). Doorstep: "cold" is the first
  request for each instance (nothing cached: it is read, rendered, encoded and written
  to the cache), "cached" repeats them (memory tier), "not_modified" repeats them with
  If-None-Match (304). Orthanc: ``/instances/{id}/preview`` on the same files, first
  request ("cold") and repeats ("repeat"). Both servers run at once and requests
  alternate between them (Doorstep instance i, Orthanc instance i, ...), sequential, one
  keep-alive connection each, timed from send to the last byte read: this machine's
  cores are shared, and interleaving makes a drifting load weigh on both alike (the
  1-minute load average at start and end is in the figures). Each server's CPU time
  per request (user + system, all threads, from /proc) is reported beside the wall
  times: it is what a busy machine distorts least.

- ``viewer``: the viewer page in Chromium (Playwright, Debian's chromium) on one study of
  100 such CT instances in 4 series: navigation start to the first frame on the canvas,
  and to every series thumbnail loaded, on loopback and with the network throttled to
  10 Mbit/s and 50 ms RTT (DevTools network emulation); each run in a new browser profile.

- ``ecg_api``: ``GET /api/v1/ecg/{sop}`` (JSON: calibrated leads and the automatic
  measurements) of 10 s 12-lead 500 Hz ECGs: pydicom's ``waveform_ecg.dcm`` (its patient,
  study, channel definitions and 77 waveform annotations: the device's measurements and
  fiducial points) with its Waveform Sequence replaced by one "RHYTHM" group of 12 leads
  at 500 Hz from ``dicom_tools.ecg_synthetic.synthetic_ecg`` (a seed per file, so each is
  a different blob), stored through STOW-RS. "cold" is the first request of each ECG
  (read, calibrated, measured, encoded); one ECG is read first, unmeasured, so that the
  process's first-use costs are not counted. "cached" repeats one ECG (the body comes from
  the cache; the lookup, scoping and audit of each read still run), "not_modified" with
  If-None-Match. Wall times and the server's CPU time per request, as above.

Prints one JSON line:
{"benchmark": "viewers", "rendered": {"instances": N, "load_average_1m": {...},
 "doorstep": {"cold": {"p50_ms", "p95_ms", "n"}, "cached": {...}, "not_modified": {...},
 "server_cpu_ms_per_request": {"cold", "cached", "not_modified"}, "png_bytes": ...},
 "orthanc": {"cold": {...}, "repeat": {...}, "server_cpu_ms_per_request": {...}, ...},
 "ratio_orthanc_over_doorstep": {"cold", "cached", "cold_server_cpu"},
 "targets_ms": {...}, "targets_met": {...}}, "duration_s": ...}

Usage: python benchmarks/viewers.py [--only rendered,ecg_api] [--instances 60] [--repeats 5]
       [--no-orthanc] [--ecgs 30]
Loopback only; every process it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.e2e: Chromium and its flags

from api_auth import DEFAULT_PG_DSN
from ingest import (
    PASSWORD,
    USER,
    FileSet,
    Orthanc,
    doorstep,
    multipart_bodies,
    orthanc,
    orthanc_plugin,
)

CT_SIZE = 512
UPSAMPLE = 4  # CT_small.dcm is 128x128
NOISE_HU = 8.0
TARGETS_MS = {"cold_p50": 20.0, "cached_p50": 2.0}


def note(message: str) -> None:
    """Progress on stderr (stdout carries only the JSON line)."""
    print(f"viewers: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options."""

    only: tuple[str, ...]
    instances: int
    repeats: int
    orthanc: bool
    ecgs: int = 30


@dataclass(frozen=True, slots=True)
class Context:
    """What every section gets: a scratch directory (removed after the run) and the options."""

    tmp: Path
    options: Options


# --- measuring ------------------------------------------------------------------------------


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50 and p95 (nearest rank) of milliseconds, and the sample count."""
    ordered = sorted(samples_ms)

    def rank(pct: int) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]

    return {"p50_ms": round(rank(50), 2), "p95_ms": round(rank(95), 2), "n": len(ordered)}


@dataclass(frozen=True, slots=True)
class Target:
    """Where one system's requests go: its URLs in order, headers, and the status expected."""

    urls: Sequence[str]
    headers: dict[str, str]
    expect: int = 200


async def _interleaved(targets: Sequence[Target]) -> list[tuple[list[float], int]]:
    """GET url i of every target in turn, i = 0, 1, ...: ms per request and the last size."""
    timeout = aiohttp.ClientTimeout(total=60)
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout)
        for _ in targets
    ]
    results: list[tuple[list[float], int]] = [([], 0) for _ in targets]
    try:
        for index in range(max(len(t.urls) for t in targets)):
            for number, (target, session) in enumerate(zip(targets, sessions, strict=True)):
                if index >= len(target.urls):
                    continue
                url = target.urls[index]
                started = time.perf_counter()
                async with session.get(url, headers=target.headers) as response:
                    body = await response.read()
                results[number][0].append((time.perf_counter() - started) * 1000)
                if response.status != target.expect:
                    raise RuntimeError(f"GET {url} answered {response.status}: {body[:200]!r}")
                results[number] = (results[number][0], len(body))
    finally:
        for session in sessions:
            await session.close()
    return results


def interleaved(*targets: Target) -> list[tuple[list[float], int]]:
    """Sequential GETs, alternating between the targets (each on one keep-alive connection),
    so that a machine whose load drifts during the run weighs on every system alike."""
    return asyncio.run(_interleaved(targets))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def orthanc_pid(folder: Path) -> int:
    """The Orthanc process whose configuration lies under folder."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"Orthanc") and len(argv) > 1 and str(folder).encode() in argv[1]:
            return int(entry.name)
    raise RuntimeError("the Orthanc process was not found")


class CpuMeter:
    """Server CPU milliseconds per request over a phase: robust to a busy machine, where
    wall time also counts the time other processes held the cores."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.start = [cpu_seconds(pid) for pid in self.pids]

    def per_request(self, requests: int) -> list[float]:
        """Each server's CPU ms per request since the meter started."""
        return [
            round((cpu_seconds(pid) - start) * 1000 / requests, 2)
            for pid, start in zip(self.pids, self.start, strict=True)
        ]


def load_average() -> float:
    """The 1-minute load average (this machine's cores are shared)."""
    return round(os.getloadavg()[0], 2)


# --- the files ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CtInstance:
    """One generated CT instance: its file and its WADO-RS path."""

    path: Path
    data: bytes
    wado_path: str


def ct_instances(root: Path, count: int, series: int = 1) -> list[CtInstance]:
    """count distinct 512x512 16-bit CT instances (one study, in `series` series) under root."""
    import numpy as np
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    source = get_testdata_file("CT_small.dcm", download=False)
    if source is None:
        raise RuntimeError("pydicom's bundled CT_small.dcm is missing")
    ds = dcmread(source)
    base = np.kron(ds.pixel_array.astype(np.float64), np.ones((UPSAMPLE, UPSAMPLE)))
    if base.shape != (CT_SIZE, CT_SIZE):
        raise RuntimeError(f"CT_small.dcm upsampled is {base.shape}, not {CT_SIZE}x{CT_SIZE}")
    ds.preamble = b"\0" * 128
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows = ds.Columns = CT_SIZE
    ds.PixelSpacing = [float(v) / UPSAMPLE for v in ds.PixelSpacing]
    ds.StudyInstanceUID = generate_uid()
    series_uids = [generate_uid() for _ in range(max(1, series))]
    ds.PatientID = "BENCH-VIEWERS"
    rng = np.random.default_rng(9)
    root.mkdir(parents=True)
    made = []
    for index in range(count):
        noisy = base + rng.normal(0.0, NOISE_HU, base.shape)
        ds.PixelData = np.clip(np.rint(noisy), -32768, 32767).astype("<i2").tobytes()
        ds["PixelData"].VR = "OW"
        ds.SeriesInstanceUID = series_uids[index * len(series_uids) // count]
        ds.SeriesNumber = series_uids.index(ds.SeriesInstanceUID) + 1
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = index + 1
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        path = root / f"{index:04d}.dcm"
        path.write_bytes(out.getvalue())
        wado = (
            f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
        made.append(CtInstance(path, out.getvalue(), wado))
    return made


# --- section: rendered ------------------------------------------------------------------------


def _stow(url: str, auth: dict[str, str], files: Sequence[CtInstance | EcgFile]) -> None:
    """STOW-RS the files, one request at a time (a user may have 3 uploads under way)."""
    fileset = FileSet("large", [f.path for f in files], [f.data for f in files])
    for body, content_type in multipart_bodies(fileset):
        headers = {**auth, "Content-Type": content_type, "Accept": "application/dicom+json"}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=300) as response:
            if response.status != 200:
                raise RuntimeError(f"STOW answered {response.status}")


def _orthanc_store(base: str, files: list[CtInstance]) -> list[str]:
    """POST each file to Orthanc's REST API; the instance ids."""
    ids = []
    for f in files:
        request = urllib.request.Request(f"{base}/instances", data=f.data, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            ids.append(str(json.load(response)["ID"]))
    return ids


def _etag(url: str, headers: dict[str, str]) -> str:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.headers["ETag"])


@contextmanager
def _orthanc_if(context: Context) -> Iterator[Orthanc | str]:
    """A fresh Orthanc, or why there is none."""
    plugin = orthanc_plugin()
    if not context.options.orthanc:
        yield "not asked for (--no-orthanc)"
    elif shutil.which("Orthanc") is None or plugin is None:
        yield "Orthanc or its DICOMweb plugin is not installed"
    else:
        with orthanc(context.tmp, plugin) as server:
            yield server


def rendered(context: Context) -> dict[str, Any]:
    """Rendered PNG of a 512x512 16-bit CT frame: Doorstep cold/cached/304, Orthanc preview."""
    options = context.options
    files = ct_instances(context.tmp / "ct", options.instances)
    out: dict[str, Any] = {
        "instances": len(files),
        "image": f"{CT_SIZE}x{CT_SIZE} 16-bit signed CT, uncompressed, as PNG",
        "targets_ms": TARGETS_MS,
        "load_average_1m": {"start": load_average()},
    }
    png = {"Accept": "image/png"}
    with doorstep("sqlite", DEFAULT_PG_DSN, context.tmp) as ours, _orthanc_if(context) as theirs:
        note(f"storing {len(files)} instances")
        _stow(f"{ours.base}/dicom-web/studies", ours.auth, files)
        doorstep_urls = [f"{ours.base}{f.wado_path}/rendered" for f in files]
        doorstep_png = {**ours.auth, **png}
        targets = [Target(doorstep_urls, doorstep_png)]
        pids = [ours.pid]
        if isinstance(theirs, Orthanc):
            ids = _orthanc_store(theirs.base, files)
            targets.append(Target([f"{theirs.base}/instances/{i}/preview" for i in ids], png))
            pids.append(orthanc_pid(context.tmp))
        note("cold: the first request for each instance")
        meter = CpuMeter(pids)
        cold = interleaved(*targets)
        cold_cpu = meter.per_request(len(files))
        note("cached: the same requests again")
        meter = CpuMeter(pids)
        repeat = interleaved(*(replace(t, urls=list(t.urls) * options.repeats) for t in targets))
        repeat_cpu = meter.per_request(len(files) * options.repeats)
        note("Doorstep 304: If-None-Match")
        revalidate = {**doorstep_png, "If-None-Match": _etag(doorstep_urls[0], doorstep_png)}
        urls = doorstep_urls[:1] * (len(files) * options.repeats)
        meter = CpuMeter(pids[:1])
        ((not_modified, _),) = interleaved(Target(urls, revalidate, expect=304))
        (not_modified_cpu,) = meter.per_request(len(urls))
    out["load_average_1m"]["end"] = load_average()
    out["doorstep"] = {
        "cold": percentiles(cold[0][0]),
        "cached": percentiles(repeat[0][0]),
        "not_modified": percentiles(not_modified),
        "server_cpu_ms_per_request": {
            "cold": cold_cpu[0],
            "cached": repeat_cpu[0],
            "not_modified": not_modified_cpu,
        },
        "png_bytes": cold[0][1],
    }
    out["targets_met"] = {
        "cold_p50": out["doorstep"]["cold"]["p50_ms"] < TARGETS_MS["cold_p50"],
        "cached_p50": out["doorstep"]["cached"]["p50_ms"] < TARGETS_MS["cached_p50"],
    }
    if not isinstance(theirs, Orthanc):
        out["orthanc"] = {"error": theirs}
        return out
    out["orthanc"] = {
        "cold": percentiles(cold[1][0]),
        "repeat": percentiles(repeat[1][0]),
        "server_cpu_ms_per_request": {"cold": cold_cpu[1], "repeat": repeat_cpu[1]},
        "png_bytes": cold[1][1],
    }
    ratio = {
        "cold": round(out["orthanc"]["cold"]["p50_ms"] / out["doorstep"]["cold"]["p50_ms"], 2),
        "cached": round(
            out["orthanc"]["repeat"]["p50_ms"] / out["doorstep"]["cached"]["p50_ms"], 2
        ),
    }
    ratio["cold_server_cpu"] = round(cold_cpu[1] / cold_cpu[0], 2)
    out["ratio_orthanc_over_doorstep"] = ratio
    out["targets_met"]["faster_than_orthanc"] = ratio["cold"] > 1 and ratio["cached"] > 1
    return out


# --- section: viewer (Chromium) ---------------------------------------------------------------

VIEWER_INSTANCES = 100
VIEWER_SERIES = 4
VIEWER_RUNS = 3
VIEWER_TARGETS_MS = {"first_frame": 1000.0, "thumbnails": 3000.0, "throttled_first_frame": 2000.0}
THROTTLED = {"latency": 50.0, "downloadThroughput": 10e6 / 8, "uploadThroughput": 10e6 / 8}
"""10 Mbit/s each way and 50 ms of round trip, as Chromium's DevTools emulate them."""
# Milliseconds from navigation start until the first frame is on the canvas / every series
# thumbnail has arrived; polled on each animation frame.
FIRST_FRAME = """() => /^Frame 1 of /.test(
    document.querySelector("[data-viewer-frame-text]")?.textContent || "") && performance.now()"""
THUMBNAILS = """() => {
  const thumbs = [...document.querySelectorAll(".viewer-series img.thumb")];
  return thumbs.length > 0 && thumbs.every((img) => img.complete && img.naturalWidth > 0)
    && performance.now();
}"""


async def _viewer_runs(base: str, view_path: str, runs: int) -> dict[str, Any]:
    """Load the viewer page `runs` times per network profile, each in a fresh browser profile."""
    from playwright.async_api import async_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS

    out: dict[str, Any] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            for profile, conditions in (("loopback", None), ("throttled", THROTTLED)):
                first, thumbs = [], []
                for _ in range(runs):
                    context = await browser.new_context(viewport={"width": 1280, "height": 900})
                    page = await context.new_page()
                    await page.goto(f"{base}/login")
                    await page.get_by_label("Username").fill(USER)
                    await page.get_by_label("Password").fill(PASSWORD)
                    await page.get_by_role("button", name="Sign in").click()
                    await page.wait_for_url(f"{base}/")
                    if conditions is not None:
                        cdp = await context.new_cdp_session(page)
                        await cdp.send("Network.enable")
                        await cdp.send(
                            "Network.emulateNetworkConditions", {"offline": False, **conditions}
                        )
                    await page.goto(base + view_path, wait_until="commit")
                    painted = await page.wait_for_function(
                        FIRST_FRAME, polling="raf", timeout=60_000
                    )
                    arrived = await page.wait_for_function(
                        THUMBNAILS, polling="raf", timeout=60_000
                    )
                    first.append(float(await painted.json_value()))
                    thumbs.append(float(await arrived.json_value()))
                    await context.close()
                out[profile] = {
                    "first_frame": percentiles(first),
                    "thumbnails": percentiles(thumbs),
                    "runs_first_frame_ms": [round(v, 1) for v in first],
                }
        finally:
            await browser.close()
    return out


def viewer(context: Context) -> dict[str, Any]:
    """The viewer in Chromium on a study of 100 CT instances: first frame and thumbnails."""
    files = ct_instances(context.tmp / "viewer-ct", VIEWER_INSTANCES, series=VIEWER_SERIES)
    study_uid = files[0].wado_path.split("/")[3]
    out: dict[str, Any] = {
        "instances": len(files),
        "series": VIEWER_SERIES,
        "image": f"{CT_SIZE}x{CT_SIZE} 16-bit CT, uncompressed",
        "throttle": {"mbit_s": 10, "rtt_ms": THROTTLED["latency"]},
        "targets_ms": VIEWER_TARGETS_MS,
        "load_average_1m": {"start": load_average()},
        "measured": "navigation start to the first frame on the canvas, and to every series "
        "thumbnail loaded; each run in a new browser profile (empty browser cache); the "
        "first loopback run also finds the server's rendered cache cold",
    }
    with doorstep("sqlite", DEFAULT_PG_DSN, context.tmp) as ours:
        note(f"storing {len(files)} instances in {VIEWER_SERIES} series")
        _stow(f"{ours.base}/dicom-web/studies", ours.auth, files)
        note("loading the viewer in Chromium")
        runs = asyncio.run(_viewer_runs(ours.base, f"/studies/{study_uid}/view", VIEWER_RUNS))
    out.update(runs)
    out["load_average_1m"]["end"] = load_average()
    out["targets_met"] = {
        "first_frame": runs["loopback"]["first_frame"]["p50_ms"] < VIEWER_TARGETS_MS["first_frame"],
        "thumbnails": runs["loopback"]["thumbnails"]["p50_ms"] < VIEWER_TARGETS_MS["thumbnails"],
        "throttled_first_frame": runs["throttled"]["first_frame"]["p50_ms"]
        < VIEWER_TARGETS_MS["throttled_first_frame"],
    }
    return out


# --- section: ecg_api --------------------------------------------------------------------------

ECG_FREQUENCY = 500.0
ECG_DURATION_S = 10.0
ECG_SENSITIVITY_UV = 1.25
ECG_CACHED_REPEATS = 100
ECG_TARGETS_MS = {"cold_p50": 50.0}


@dataclass(frozen=True, slots=True)
class EcgFile:
    """One generated 12-lead ECG: its file and its SOP Instance UID."""

    path: Path
    data: bytes
    sop_instance_uid: str


def ecg_files(root: Path, count: int) -> list[EcgFile]:
    """count distinct 10 s 12-lead 500 Hz ECGs in waveform_ecg.dcm's clothes (see the top)."""
    import numpy as np
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import generate_uid

    from dicom_tools.ecg import LEAD_NAMES
    from dicom_tools.ecg_synthetic import synthetic_ecg

    source = get_testdata_file("waveform_ecg.dcm", download=False)
    if source is None:
        raise RuntimeError("pydicom's bundled waveform_ecg.dcm is missing")
    root.mkdir(parents=True)
    made = []
    for seed in range(count):
        ds = dcmread(source)
        channels = {
            str(item.ChannelSourceSequence[0].CodeMeaning).split()[1]: item
            for item in ds.WaveformSequence[0].ChannelDefinitionSequence
        }
        leads = synthetic_ecg(
            heart_rate_bpm=60 + seed % 40,
            duration_s=ECG_DURATION_S,
            sampling_frequency=ECG_FREQUENCY,
            seed=seed,
            noise_uv=15.0,
            wander_uv=50.0,
        )
        stored = np.stack([leads[name] / ECG_SENSITIVITY_UV for name in LEAD_NAMES], axis=1)
        group = Dataset()
        group.MultiplexGroupTimeOffset = "0"
        group.WaveformOriginality = "ORIGINAL"
        group.NumberOfWaveformChannels = len(LEAD_NAMES)
        group.NumberOfWaveformSamples = stored.shape[0]
        group.SamplingFrequency = f"{ECG_FREQUENCY:g}"
        group.MultiplexGroupLabel = "RHYTHM"
        group.ChannelDefinitionSequence = DicomSequence([channels[n] for n in LEAD_NAMES])
        for item in group.ChannelDefinitionSequence:
            item.ChannelSensitivity = f"{ECG_SENSITIVITY_UV:g}"
        group.WaveformBitsAllocated = 16
        group.WaveformSampleInterpretation = "SS"
        group.WaveformData = np.rint(stored).astype("<i2").tobytes()
        ds.WaveformSequence = DicomSequence([group])
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        path = root / f"{seed:04d}.dcm"
        path.write_bytes(out.getvalue())
        made.append(EcgFile(path, out.getvalue(), str(ds.SOPInstanceUID)))
    return made


def ecg_api(context: Context) -> dict[str, Any]:
    """GET /api/v1/ecg/{sop} of 10 s 12-lead 500 Hz ECGs: cold, cached and 304."""
    files = ecg_files(context.tmp / "ecg", context.options.ecgs + 1)
    out: dict[str, Any] = {
        "ecgs": len(files) - 1,
        "ecg": f"12 leads, {ECG_FREQUENCY:g} Hz, {ECG_DURATION_S:g} s, 16 bit, "
        "77 device annotations",
        "targets_ms": ECG_TARGETS_MS,
        "load_average_1m": {"start": load_average()},
    }
    with doorstep("sqlite", DEFAULT_PG_DSN, context.tmp) as ours:
        note(f"storing {len(files)} ECGs")
        _stow(f"{ours.base}/dicom-web/studies", ours.auth, files)
        urls = [f"{ours.base}/api/v1/ecg/{f.sop_instance_uid}" for f in files]
        interleaved(Target(urls[:1], ours.auth))  # the process's first use, not measured
        note("ECG API cold: the first request for each ECG")
        meter = CpuMeter([ours.pid])
        ((cold, body_bytes),) = interleaved(Target(urls[1:], ours.auth))
        (cold_cpu,) = meter.per_request(len(urls) - 1)
        note("ECG API cached and 304")
        repeated = urls[1:2] * ECG_CACHED_REPEATS
        meter = CpuMeter([ours.pid])
        ((cached, _),) = interleaved(Target(repeated, ours.auth))
        (cached_cpu,) = meter.per_request(len(repeated))
        revalidate = {**ours.auth, "If-None-Match": _etag(urls[1], ours.auth)}
        meter = CpuMeter([ours.pid])
        ((not_modified, _),) = interleaved(Target(repeated, revalidate, expect=304))
        (not_modified_cpu,) = meter.per_request(len(repeated))
    out["load_average_1m"]["end"] = load_average()
    out["doorstep"] = {
        "cold": percentiles(cold),
        "cached": percentiles(cached),
        "not_modified": percentiles(not_modified),
        "server_cpu_ms_per_request": {
            "cold": cold_cpu,
            "cached": cached_cpu,
            "not_modified": not_modified_cpu,
        },
        "json_bytes": body_bytes,
    }
    out["targets_met"] = {
        "cold_p50": out["doorstep"]["cold"]["p50_ms"] < ECG_TARGETS_MS["cold_p50"]
    }
    return out


SECTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "rendered": rendered,
    "viewer": viewer,
    "ecg_api": ecg_api,
}
"""Every section by name, run in this order."""


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"sections, of {', '.join(SECTIONS)}"
    )
    parser.add_argument("--instances", type=int, default=60, help="distinct CT instances")
    parser.add_argument("--repeats", type=int, default=5, help="cached requests per instance")
    parser.add_argument("--no-orthanc", action="store_true")
    parser.add_argument("--ecgs", type=int, default=30, help="distinct ECGs (ecg_api)")
    args = parser.parse_args(argv)
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(only) - set(SECTIONS)
    if unknown or not only:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; of {', '.join(SECTIONS)}")
    return Options(
        only=only,
        instances=max(1, args.instances),
        repeats=max(1, args.repeats),
        orthanc=not args.no_orthanc,
        ecgs=max(1, args.ecgs),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections and print one JSON line; exit 1 when a section failed."""
    options = parse_args(argv)
    started = time.perf_counter()
    out: dict[str, Any] = {"benchmark": "viewers"}
    ok = True
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-viewers-") as name:
        context = Context(Path(name), options)
        for section in (s for s in SECTIONS if s in options.only):
            try:
                out[section] = SECTIONS[section](context)
            except Exception as error:  # reported in the JSON line; the other sections still run
                print(f"viewers: {section}: {error}", file=sys.stderr)
                out[section] = {"error": str(error).strip().splitlines()[0][:300]}
                ok = False
    out["duration_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
