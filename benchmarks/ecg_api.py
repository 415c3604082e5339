"""Latency of the ECG API, `GET /api/v1/ecg/{sop}`, for 10 s 12-lead 500 Hz ECGs.

A fresh data directory on SQLite, a clinic, a GP and a token made with the real CLI,
`doorstep serve` on loopback. The ECGs are pydicom's ``waveform_ecg.dcm`` (its patient,
study, channel definitions and its 77 waveform annotations, i.e. the device's
measurements and fiducial points) with its Waveform Sequence replaced by one 10 s
"RHYTHM" group of 12 leads at 500 Hz (16 bit SS, 1.25 uV per unit), the leads from
``dicom_tools.ecg_synthetic.synthetic_ecg`` (a different seed per file, so every file is
a different blob), stored through STOW-RS.

- ``cold``: the first GET of each stored ECG (nothing of it cached: read, calibrate,
  measure, encode), one after another; one ECG is read first, unmeasured, so that the
  process's first-use costs (imports, the database pool) are not counted.
- ``cached``: the same ECG read again and again (the body comes from the server's cache;
  the location, scoping and audit of each read still run).
- ``not_modified``: the same with ``If-None-Match`` (304).

Each figure is wall time at the client (connection reused) and, since the machine may be
shared, the server process's CPU time per request (user + system, from /proc, over all the
requests of the phase).

Prints one JSON line:
{"benchmark": "ecg_api", "cold": {"n", "p50_ms", "p95_ms", "server_cpu_ms"},
 "cached": {...}, "not_modified": {...}, "body_bytes": ..., "ecg": "12 leads, 500 Hz, 10 s",
 "target": "p50 < 50 ms cold"}

Usage: python benchmarks/ecg_api.py [--cold 30] [--cached 100] [--pin CORE]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    LOOPBACK,
    clean_env,
    free_port,
    log_tail,
    run_cli,
    server_process,
    wait_ready,
)

from dicom_tools.ecg import LEAD_NAMES  # noqa: E402
from dicom_tools.ecg_synthetic import synthetic_ecg  # noqa: E402

ORG = "Bench Clinic"
USER = "bench-gp"
PASSWORD = "benchmark password 1"
FREQUENCY = 500.0
DURATION_S = 10.0
SENSITIVITY_UV = 1.25
DICOM_PARTS = 'multipart/related; type="application/dicom"'


def ecg_file(seed: int) -> bytes:
    """waveform_ecg.dcm with one 10 s 12-lead 500 Hz group of synthetic leads, new UIDs."""
    path = pydicom.data.get_testdata_file("waveform_ecg.dcm", download=False)
    if path is None:
        raise SystemExit("ecg_api: pydicom's waveform_ecg.dcm is not installed")
    ds = pydicom.dcmread(path)
    rhythm = ds.WaveformSequence[0]
    by_name = {
        str(item.ChannelSourceSequence[0].CodeMeaning).split()[1]: item
        for item in rhythm.ChannelDefinitionSequence
    }
    leads = synthetic_ecg(
        heart_rate_bpm=60 + seed % 40,
        duration_s=DURATION_S,
        sampling_frequency=FREQUENCY,
        seed=seed,
        noise_uv=15.0,
        wander_uv=50.0,
    )
    stored = np.stack([leads[name] / SENSITIVITY_UV for name in LEAD_NAMES], axis=1)
    group = Dataset()
    group.MultiplexGroupTimeOffset = "0"
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = len(LEAD_NAMES)
    group.NumberOfWaveformSamples = stored.shape[0]
    group.SamplingFrequency = f"{FREQUENCY:g}"
    group.MultiplexGroupLabel = "RHYTHM"
    group.ChannelDefinitionSequence = DicomSequence([by_name[name] for name in LEAD_NAMES])
    for item in group.ChannelDefinitionSequence:
        item.ChannelSensitivity = f"{SENSITIVITY_UV:g}"
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    group.WaveformData = np.rint(stored).astype("<i2").tobytes()
    ds.WaveformSequence = DicomSequence([group])
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@dataclass
class Server:
    """A provisioned deployment with `doorstep serve` up."""

    host: str
    port: int
    pid: int
    token: str


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stow(connection: http.client.HTTPConnection, token: str, files: Sequence[bytes]) -> None:
    """Store the files in one STOW-RS request."""
    boundary = secrets.token_hex(16)
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
            for data in files
        )
        + f"--{boundary}--\r\n".encode()
    )
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"{DICOM_PARTS}; boundary={boundary}",
        "Accept": "application/dicom+json",
    }
    connection.request("POST", "/dicom-web/studies", body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"STOW answered {response.status}: {answer[:300]!r}")


def timed_get(
    connection: http.client.HTTPConnection, path: str, headers: dict[str, str], status: int
) -> tuple[float, int]:
    """Milliseconds to the last byte of a GET, and the body's length."""
    started = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000.0
    if response.status != status:
        raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
    return elapsed, len(body)


def summary(times: Sequence[float], cpu: float) -> dict[str, Any]:
    """p50, p95 and the server's CPU time per request."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(times),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "server_cpu_ms": round(cpu * 1000.0 / len(times), 1),
    }


def run(server: Server, sops: Sequence[str], cached: int) -> dict[str, Any]:
    """The three phases against a running server; the first SOP is the unmeasured warm-up."""
    auth = {"Authorization": f"Bearer {server.token}"}
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        timed_get(connection, f"/api/v1/ecg/{sops[0]}", auth, 200)
        figures: dict[str, Any] = {}
        phases: list[tuple[str, list[str], dict[str, str], int]] = [
            ("cold", [f"/api/v1/ecg/{sop}" for sop in sops[1:]], auth, 200),
            ("cached", [f"/api/v1/ecg/{sops[1]}"] * cached, auth, 200),
        ]
        etag = ""
        for name, paths, headers, status in phases:
            times, sizes = [], []
            before = cpu_seconds(server.pid)
            for path in paths:
                elapsed, size = timed_get(connection, path, headers, status)
                times.append(elapsed)
                sizes.append(size)
            figures[name] = summary(times, cpu_seconds(server.pid) - before)
            figures.setdefault("body_bytes", sizes[0])
        connection.request("GET", f"/api/v1/ecg/{sops[1]}", headers=auth)
        response = connection.getresponse()
        response.read()
        etag = response.getheader("ETag") or ""
        times = []
        before = cpu_seconds(server.pid)
        for _ in range(cached):
            elapsed, _size = timed_get(
                connection, f"/api/v1/ecg/{sops[1]}", {**auth, "If-None-Match": etag}, 304
            )
            times.append(elapsed)
        figures["not_modified"] = summary(times, cpu_seconds(server.pid) - before)
        return figures
    finally:
        connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Provision, store, measure; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=30, help="ECGs read once each")
    parser.add_argument("--cached", type=int, default=100, help="reads of one cached ECG")
    parser.add_argument("--pin", default=None, help="run the server under taskset -c PIN")
    args = parser.parse_args(argv)
    files = [ecg_file(seed) for seed in range(args.cold + 1)]
    sops = [str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID) for data in files]
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-ecg-") as tmp:
        data_dir = Path(tmp) / "data"
        env = clean_env(DOORSTEP_DATA_DIR=str(data_dir), DOORSTEP_LOG_LEVEL="WARNING")
        run_cli(["db", "upgrade"], env=env)
        run_cli(["org", "add", ORG, "--kind", "clinic"], env=env)
        run_cli(
            ["user", "add", USER, "--org", ORG, "--role", "gp", "--password-stdin"],
            env=env,
            stdin=PASSWORD + "\n",
        )
        token = run_cli(["token", "create", USER], env=env).strip()
        port = free_port()
        log_path = Path(tmp) / "server.log"
        serve = ["serve", "--host", LOOPBACK, "--port", str(port), "--dicom-port", "0"]
        with server_process(serve, env=env, log_path=log_path, pin=args.pin) as process:
            try:
                wait_ready(f"http://{LOOPBACK}:{port}/readyz", process, timeout=60, poll=0.1)
            except RuntimeError as error:
                raise RuntimeError(f"{error}\n{log_tail(log_path)}") from None
            server = Server(LOOPBACK, port, process.pid, token)
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
            try:
                stow(connection, token, files)
            finally:
                connection.close()
            figures = run(server, sops, args.cached)
            if process.poll() is not None:
                raise RuntimeError(f"the server died during the run\n{log_tail(log_path)}")
    line = {
        "benchmark": "ecg_api",
        **figures,
        "ecg": f"12 leads, {FREQUENCY:g} Hz, {DURATION_S:g} s, 77 device annotations",
        "target": "p50 < 50 ms cold (including the measurements)",
    }
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
