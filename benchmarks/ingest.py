"""Ingest throughput (STOW-RS and C-STORE) and QIDO latency of Doorstep, next to Orthanc.

The same files go everywhere in one run: 1,000 small instances (pydicom's
CT_small.dcm, 39 kB, with new UIDs and a zero preamble) and 100 large ones (a
2560x1024 16-bit uncompressed CT-like image, 5.2 MB). Each (server, backend,
path) gets a fresh deployment, so every instance is new to the archive:

- Doorstep on SQLite and on PostgreSQL (a fresh database `doorstep_bench_<random>`,
  dropped afterwards), provisioned through the real CLI (an organisation whose
  AE title is the SCU's, a user, a token), `doorstep serve` with HTTP and DIMSE on
  loopback;
- Orthanc (Debian's `orthanc` + `orthanc-dicomweb`), a temporary storage and
  index directory, DICOMweb plugin on, its default SQLite index.

STOW-RS: multipart/related bodies of 50 small (10 large) instances, 4 requests at
once, with aiohttp; measured in --rounds interleaved rounds (each round every
system once, on fresh deployments) and reported as the median round, because
this machine's disk and CPU drift by a third from one minute to the next.
C-STORE: dcmtk `storescu`, every file in one association, once per system.
QIDO: 100,000 studies (each with a series and an instance) bulk-inserted into
the Doorstep index with SQL, then `GET /dicom-web/studies?...&limit=100`
(several kinds of query, sequentially, after a warm-up).

Prints one JSON line:
{"benchmark": "ingest", "doorstep": {"sqlite": {"stow": {"small": {"instances_s", "mb_s",
 "seconds", "rounds_instances_s"}, "large": {...}}, "cstore": {...}, "qido": {...}},
 "postgresql": {...}},
 "orthanc": {"stow": {...}, "cstore": {...}}, "ratio_doorstep_over_orthanc": {...}, ...}

Usage: python benchmarks/ingest.py [--backends sqlite,postgresql] [--small 1000]
       [--large 100] [--studies 100000] [--no-orthanc] [--qido-repeats 40] [--rounds 3]
Environment: BENCH_PG_DSN (default postgresql://postgres@127.0.0.1:5432/postgres).
Loopback only; every process it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    LOOPBACK,
    backends,
    clean_env,
    external_process,
    free_port,
    log_tail,
    run_cli,
    server_process,
    wait_port,
    wait_ready,
)
from api_auth import DEFAULT_PG_DSN, postgres_database

ORG = "Bench Clinic"
USER = "bench"
PASSWORD = "benchmark password 1"
SCU_AE = "BENCHSCU"
DOORSTEP_AE = "DOORSTEP"
ORTHANC_AE = "ORTHANC"
DICOM_PARTS = 'multipart/related; type="application/dicom"'
BATCH = {"small": 50, "large": 10}
CONCURRENT_REQUESTS = 4
LARGE_ROWS, LARGE_COLUMNS = 2560, 1024
ORTHANC_PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
MB = 1_000_000

FileFigures = dict[str, dict[str, float]]
"""Figures of one timed run per file set ("small", "large")."""


def note(message: str) -> None:
    """Progress on stderr (stdout carries only the JSON line)."""
    print(f"ingest: {message}", file=sys.stderr, flush=True)


# --- the files ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileSet:
    """Part 10 files of one size class, on disk and in memory."""

    name: str
    paths: list[Path]
    data: list[bytes]

    @property
    def total_bytes(self) -> int:
        return sum(len(d) for d in self.data)


def generate(root: Path, small: int, large: int) -> dict[str, FileSet]:
    """The small and large instances, written under root/small and root/large."""
    import numpy as np
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        raise RuntimeError("pydicom's bundled CT_small.dcm is missing")
    template = dcmread(path)
    template.preamble = b"\0" * 128  # the bundled TIFF preamble would be zeroed on ingest

    def write(kind: str, count: int, per_study: int) -> FileSet:
        folder = root / kind
        folder.mkdir(parents=True)
        paths, blobs = [], []
        study_uid = series_uid = ""
        for index in range(count):
            if index % per_study == 0:
                study_uid, series_uid = generate_uid(), generate_uid()
                template.StudyInstanceUID, template.SeriesInstanceUID = study_uid, series_uid
                template.PatientID = f"BENCH-{kind}-{index // per_study}"
            sop_uid = generate_uid()
            template.SOPInstanceUID = sop_uid
            template.file_meta.MediaStorageSOPInstanceUID = sop_uid
            template.InstanceNumber = index % per_study + 1
            target = folder / f"{index:05d}.dcm"
            template.save_as(target, enforce_file_format=True)
            paths.append(target)
            blobs.append(target.read_bytes())
        return FileSet(kind, paths, blobs)

    small_set = write("small", small, 100)
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 4096, size=(LARGE_ROWS, LARGE_COLUMNS), dtype=np.uint16)
    template.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    template.Rows, template.Columns = LARGE_ROWS, LARGE_COLUMNS
    template.BitsAllocated, template.BitsStored, template.HighBit = 16, 12, 11
    template.PixelRepresentation = 0
    template.SamplesPerPixel = 1
    template.PhotometricInterpretation = "MONOCHROME2"
    template.PixelData = pixels.tobytes()
    template["PixelData"].VR = "OW"
    large_set = write("large", large, 10)
    return {"small": small_set, "large": large_set}


# --- measuring ------------------------------------------------------------------------------


def figures(files: FileSet, seconds: float) -> dict[str, float]:
    """Instances/s and MB/s (10^6 bytes) of one timed run."""
    return {
        "instances_s": round(len(files.data) / seconds, 1),
        "mb_s": round(files.total_bytes / MB / seconds, 1),
        "seconds": round(seconds, 3),
    }


def multipart_bodies(files: FileSet) -> list[tuple[bytes, str]]:
    """The STOW request bodies (and Content-Types) of a file set, BATCH instances each."""
    size = BATCH[files.name]
    bodies = []
    for start in range(0, len(files.data), size):
        boundary = secrets.token_hex(16).encode()
        body = b"".join(
            b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
            for part in files.data[start : start + size]
        )
        bodies.append(
            (body + b"--" + boundary + b"--\r\n", f"{DICOM_PARTS}; boundary={boundary.decode()}")
        )
    return bodies


async def _stow(url: str, headers: dict[str, str], bodies: list[tuple[bytes, str]]) -> float:
    queue = list(reversed(bodies))
    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=CONCURRENT_REQUESTS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def worker() -> None:
            while queue:
                body, content_type = queue.pop()
                async with session.post(
                    url,
                    data=body,
                    headers={
                        **headers,
                        "Content-Type": content_type,
                        "Accept": "application/dicom+json",
                    },
                ) as response:
                    answer = await response.read()
                    if response.status != 200:
                        text = answer[:300].decode(errors="replace")
                        raise RuntimeError(f"STOW answered {response.status}: {text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENT_REQUESTS)))
        return time.perf_counter() - started


def stow(url: str, headers: dict[str, str], files: FileSet) -> dict[str, float]:
    """POST the files as STOW-RS requests; throughput."""
    bodies = multipart_bodies(files)
    os.sync()  # earlier phases' dirty pages would otherwise be flushed by this one's fsyncs
    return figures(files, asyncio.run(_stow(url, headers, bodies)))


def cstore(port: int, called_ae: str, files: FileSet) -> dict[str, float]:
    """storescu every file over one association; throughput."""
    command = ["storescu", "-aet", SCU_AE, "-aec", called_ae, LOOPBACK, str(port)]
    command += [str(p) for p in files.paths]
    os.sync()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or "E:" in done.stderr:
        raise RuntimeError(f"storescu exited {done.returncode}: {done.stderr.strip()[-800:]}")
    return figures(files, seconds)


# --- Doorstep ------------------------------------------------------------------------------


@dataclass
class Doorstep:
    """A provisioned Doorstep deployment with its server running."""

    env: dict[str, str]
    base: str
    dicom_port: int
    token: str
    database_url: str
    pid: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def doorstep(backend: str, pg_dsn: str, tmp: Path) -> Iterator[Doorstep]:
    """A fresh data directory (and database), provisioned with the CLI, `doorstep serve` up."""
    data_dir = tmp / f"doorstep-{backend}-{secrets.token_hex(3)}"
    env = clean_env(
        DOORSTEP_DATA_DIR=str(data_dir),
        DOORSTEP_LOG_LEVEL="WARNING",
        # The benchmark's one user sends CONCURRENT_REQUESTS at once (the default allows 3).
        DOORSTEP_MAX_UPLOADS_PER_USER=str(CONCURRENT_REQUESTS),
    )
    with _database(backend, pg_dsn, data_dir) as url:
        env["DOORSTEP_DATABASE_URL"] = url
        run_cli(["db", "upgrade"], env=env)
        run_cli(["org", "add", ORG, "--kind", "clinic", "--ae-title", SCU_AE], env=env)
        run_cli(
            ["user", "add", USER, "--org", ORG, "--role", "gp", "--password-stdin"],
            env=env,
            stdin=PASSWORD + "\n",
        )
        token = run_cli(["token", "create", USER], env=env).strip()
        port, dicom_port = free_port(), free_port()
        args = ["serve", "--host", LOOPBACK, "--port", str(port), "--dicom-port", str(dicom_port)]
        log_path = data_dir.with_suffix(".log")
        with server_process(args, env=env, log_path=log_path) as server:
            base = f"http://{LOOPBACK}:{port}"
            try:
                wait_ready(f"{base}/readyz", server, timeout=60, poll=0.1)
                wait_port(LOOPBACK, dicom_port, server)
            except RuntimeError as error:
                raise RuntimeError(f"{error}\n{log_tail(log_path)}") from None
            yield Doorstep(env, base, dicom_port, token, url, server.pid)
            if server.poll() is not None:
                raise RuntimeError(f"doorstep died during the run\n{log_tail(log_path)}")


@contextmanager
def _database(backend: str, pg_dsn: str, data_dir: Path) -> Iterator[str]:
    if backend == "sqlite":
        data_dir.mkdir(parents=True)
        yield f"sqlite+aiosqlite:///{data_dir / 'doorstep.db'}"
        return
    with postgres_database(pg_dsn) as url:
        yield url


async def _count_instances(url: str) -> int:
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from server.archive.models import Instance

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(Instance)) or 0)
    finally:
        await engine.dispose()


def check_count(found: int, expected: int, what: str) -> None:
    """RuntimeError unless the server holds exactly the instances sent."""
    if found != expected:
        raise RuntimeError(f"{what}: {found} instances stored, {expected} sent")


def stow_doorstep(backend: str, pg_dsn: str, tmp: Path, files: dict[str, FileSet]) -> FileFigures:
    """One STOW-RS round on a fresh deployment: small, then large."""
    figures_: FileFigures = {}
    with doorstep(backend, pg_dsn, tmp) as server:
        url = f"{server.base}/dicom-web/studies"
        for kind in ("small", "large"):
            note(f"doorstep/{backend}: STOW-RS {kind}")
            figures_[kind] = stow(url, server.auth, files[kind])
        sent = sum(len(f.data) for f in files.values())
        check_count(asyncio.run(_count_instances(server.database_url)), sent, "doorstep STOW")
    return figures_


def measure_doorstep(
    backend: str, pg_dsn: str, tmp: Path, files: dict[str, FileSet], options: Options
) -> dict[str, Any]:
    """QIDO and C-STORE, each on a fresh deployment of a backend (STOW runs in rounds)."""
    result: dict[str, Any] = {}
    if options.studies:
        with doorstep(backend, pg_dsn, tmp) as server:
            note(f"doorstep/{backend}: QIDO over {options.studies} studies")
            result["qido"] = qido(server, backend, options)
    with doorstep(backend, pg_dsn, tmp) as server:
        result["cstore"] = {}
        for kind in ("small", "large"):
            note(f"doorstep/{backend}: C-STORE {kind}")
            result["cstore"][kind] = cstore(server.dicom_port, DOORSTEP_AE, files[kind])
        sent = sum(len(f.data) for f in files.values())
        check_count(asyncio.run(_count_instances(server.database_url)), sent, "doorstep C-STORE")
    return result


def median_round(rounds: list[FileFigures]) -> dict[str, dict[str, Any]]:
    """Per file set, the round with the median throughput, and every round's instances/s."""
    out: dict[str, dict[str, Any]] = {}
    for kind in rounds[0]:
        ordered = sorted((r[kind] for r in rounds), key=lambda f: f["instances_s"])
        out[kind] = {
            **ordered[(len(ordered) - 1) // 2],
            "rounds_instances_s": [r[kind]["instances_s"] for r in rounds],
        }
    return out


# --- QIDO over a large index ------------------------------------------------------------------

FAMILY = [
    "SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "ROBINSON",
    "WRIGHT", "THOMPSON", "EVANS", "WALKER", "WHITE", "ROBERTS", "GREEN", "HALL", "WOOD",
    "JACKSON", "CLARKE", "OKAFOR", "MOREAU", "NGUYEN", "KOWALSKI", "RIVER", "GARCIA", "MULLER",
]  # fmt: skip
GIVEN = [
    "JOHN", "JANE", "ALICE", "ARTHUR", "GRACE", "OMAR", "LENA", "PIOTR", "MEI", "SAM", "IVY",
    "NOAH", "ZARA", "LUCA", "EMMA", "HUGO", "RUTH", "TOM", "NINA", "OSCAR",
]  # fmt: skip
MODALITIES = ["CT", "MR", "US", "CR", "DX", "ECG", "MG", "XA", "NM", "PT"]
_CHUNK = 5000


async def _populate(url: str, studies: int) -> None:
    """Bulk-insert studies (one series and one instance each) for the organisation."""
    from sqlalchemy import func, insert, select, text
    from sqlalchemy.ext.asyncio import create_async_engine

    from server.accounts.models import Organisation
    from server.archive.models import Instance, Series, Study, name_key

    rng = random.Random(7)
    now = datetime.now(UTC)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            org_id = await connection.scalar(
                select(Organisation.id).where(Organisation.name == ORG)
            )
            start = {
                model: int(await connection.scalar(select(func.max(model.id))) or 0) + 1
                for model in (Study, Series, Instance)
            }
            for first in range(0, studies, _CHUNK):
                rows_study, rows_series, rows_instance = [], [], []
                for n in range(first, min(studies, first + _CHUNK)):
                    name = f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}^{n % 97}"
                    study_id = start[Study] + n
                    date = (
                        f"{rng.randint(2000, 2025)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
                    )
                    rows_study.append(
                        {
                            "id": study_id,
                            "org_id": org_id,
                            "study_uid": f"2.25.{900000000 + n}",
                            "patient_id": f"P{n:07d}",
                            "patient_name": name,
                            "patient_name_key": name_key(name),
                            "patient_birth_date": f"19{rng.randint(30, 99)}0101",
                            "patient_sex": rng.choice("FMO"),
                            "study_date": date,
                            "study_time": "120000",
                            "accession_number": f"A{n:08d}",
                            "study_id": str(n),
                            "study_description": "Bench study",
                            "referring_physician_name": None,
                            "referring_physician_key": None,
                            "created_at": now,
                        }
                    )
                    rows_series.append(
                        {
                            "id": start[Series] + n,
                            "study_id": study_id,
                            "series_uid": f"2.25.{800000000 + n}",
                            "modality": rng.choice(MODALITIES),
                            "series_number": 1,
                            "series_description": None,
                            "body_part": None,
                            "created_at": now,
                        }
                    )
                    rows_instance.append(
                        {
                            "id": start[Instance] + n,
                            "org_id": org_id,
                            "study_id": study_id,
                            "series_id": start[Series] + n,
                            "sop_instance_uid": f"2.25.{700000000 + n}",
                            "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
                            "instance_number": 1,
                            "number_of_frames": 1,
                            "rows": 512,
                            "columns": 512,
                            "bits_allocated": 16,
                            "transfer_syntax_uid": "1.2.840.10008.1.2.1",
                            "sha256": f"{n:064x}",
                            "size": 524288,
                            "preamble_neutralised": False,
                            "source": "bench",
                            "stored_at": now,
                        }
                    )
                await connection.execute(insert(Study), rows_study)
                await connection.execute(insert(Series), rows_series)
                await connection.execute(insert(Instance), rows_instance)
            if connection.dialect.name == "postgresql":
                for table in ("dicom_studies", "dicom_series", "dicom_instances"):
                    await connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


QUERIES: dict[str, dict[str, str]] = {
    "patient_name_prefix": {"PatientName": "OKAFOR^G*"},
    "patient_name_exact": {"PatientName": "MOREAU^LENA^5"},
    "patient_name_fuzzy": {"PatientName": "nguyen", "fuzzymatching": "true"},
    "patient_id": {"PatientID": "P0054321"},
    "accession": {"AccessionNumber": "A00012345"},
    "date_range": {"StudyDate": "20200101-20200131"},
    "modality": {"ModalitiesInStudy": "MR"},
    "name_and_date": {"PatientName": "SMITH*", "StudyDate": "20100101-20151231"},
    "newest": {},
}


async def _qido(base: str, auth: dict[str, str], repeats: int) -> dict[str, Any]:
    headers = {**auth, "Accept": "application/dicom+json"}
    timings: dict[str, list[float]] = {}
    results: dict[str, int] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for name, keys in QUERIES.items():
            params = {**keys, "limit": "100"}
            samples = []
            for attempt in range(repeats + 3):
                started = time.perf_counter()
                async with session.get(
                    f"{base}/dicom-web/studies", params=params, headers=headers
                ) as response:
                    body = await response.read()
                    if response.status not in (200, 204):
                        raise RuntimeError(
                            f"QIDO {name} answered {response.status}: {body[:300]!r}"
                        )
                elapsed = time.perf_counter() - started
                if attempt >= 3:  # the first ones warm caches
                    samples.append(elapsed * 1000)
            timings[name] = samples
            results[name] = len(json.loads(body)) if body else 0
    every = [t for samples in timings.values() for t in samples]
    return {
        "p50_ms": round(_percentile(every, 50), 2),
        "p95_ms": round(_percentile(every, 95), 2),
        "queries": {
            name: {
                "p50_ms": round(_percentile(samples, 50), 2),
                "p95_ms": round(_percentile(samples, 95), 2),
                "results": results[name],
            }
            for name, samples in timings.items()
        },
        "repeats": repeats,
    }


def _percentile(samples: Sequence[float], pct: int) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def qido(server: Doorstep, backend: str, options: Options) -> dict[str, Any]:
    """Populate the index to options.studies studies, then time the QIDO queries."""
    started = time.perf_counter()
    asyncio.run(_populate(server.database_url, options.studies))
    populated = time.perf_counter() - started
    note(f"doorstep/{backend}: {options.studies} studies inserted in {populated:.1f}s")
    found = asyncio.run(_qido(server.base, server.auth, options.qido_repeats))
    found["studies"] = options.studies
    return found


# --- Orthanc -------------------------------------------------------------------------------------


def orthanc_plugin() -> Path | None:
    """The DICOMweb plugin of Debian's orthanc-dicomweb package."""
    for folder in ORTHANC_PLUGIN_DIRS:
        for candidate in sorted(folder.glob("libOrthancDicomWeb.so*")):
            return candidate
    return None


@dataclass
class Orthanc:
    """A running Orthanc."""

    base: str
    dicom_port: int


@contextmanager
def orthanc(tmp: Path, plugin: Path) -> Iterator[Orthanc]:
    """Orthanc with a fresh storage/index directory, DICOMweb on, C-STORE from SCU_AE only."""
    folder = tmp / f"orthanc-{secrets.token_hex(3)}"
    folder.mkdir()
    port, dicom_port = free_port(), free_port()
    config = {
        "Name": "bench",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "StorageCompression": False,
        "HttpPort": port,
        "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AE,
        "RemoteAccessAllowed": False,  # Orthanc 1.10 cannot bind to loopback only: refuse others
        "AuthenticationEnabled": False,
        "DicomAlwaysAllowStore": False,
        "DicomCheckModalityHost": True,
        "DicomModalities": {"bench": [SCU_AE, LOOPBACK, 104]},
        "DicomCheckCalledAet": False,
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "SyncStorageArea": True,
        "OverwriteInstances": False,
    }
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config))
    log_path = folder / "orthanc.log"
    with external_process(["Orthanc", str(config_path)], log_path=log_path) as process:
        base = f"http://{LOOPBACK}:{port}"
        try:
            wait_ready(f"{base}/system", process, timeout=60, poll=0.1)
            wait_port(LOOPBACK, dicom_port, process)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{log_tail(log_path)}") from None
        yield Orthanc(base, dicom_port)
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc died during the run\n{log_tail(log_path)}")
    shutil.rmtree(folder, ignore_errors=True)


def _orthanc_count(base: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{base}/statistics", timeout=30) as response:
        return int(json.load(response)["CountInstances"])


def stow_orthanc(tmp: Path, files: dict[str, FileSet], plugin: Path) -> FileFigures:
    """One STOW-RS round through the DICOMweb plugin on a fresh Orthanc."""
    figures_: FileFigures = {}
    with orthanc(tmp, plugin) as server:
        for kind in ("small", "large"):
            note(f"orthanc: STOW-RS {kind}")
            figures_[kind] = stow(f"{server.base}/dicom-web/studies", {}, files[kind])
        check_count(_orthanc_count(server.base), sum(len(f.data) for f in files.values()), "STOW")
    return figures_


def measure_orthanc(tmp: Path, files: dict[str, FileSet], plugin: Path) -> dict[str, Any]:
    """C-STORE on a fresh Orthanc (STOW runs in rounds)."""
    result: dict[str, Any] = {"cstore": {}}
    with orthanc(tmp, plugin) as server:
        for kind in ("small", "large"):
            note(f"orthanc: C-STORE {kind}")
            result["cstore"][kind] = cstore(server.dicom_port, ORTHANC_AE, files[kind])
        check_count(
            _orthanc_count(server.base), sum(len(f.data) for f in files.values()), "C-STORE"
        )
    return result


def ratios(doorstep_figures: dict[str, Any], orthanc_figures: dict[str, Any]) -> dict[str, Any]:
    """doorstep/orthanc instances/s for each path and size."""
    out: dict[str, Any] = {}
    for path in ("stow", "cstore"):
        for kind in ("small", "large"):
            ours = doorstep_figures.get(path, {}).get(kind, {}).get("instances_s")
            theirs = orthanc_figures.get(path, {}).get(kind, {}).get("instances_s")
            if ours and theirs:
                out[f"{path}_{kind}"] = round(ours / theirs, 2)
    return out


# --- main --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options."""

    backends: tuple[str, ...]
    small: int
    large: int
    studies: int
    qido_repeats: int
    orthanc: bool
    pg_dsn: str
    rounds: int


def parse_args(argv: Sequence[str] | None) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100)
    parser.add_argument("--studies", type=int, default=100_000, help="0 skips QIDO")
    parser.add_argument("--qido-repeats", type=int, default=40)
    parser.add_argument("--no-orthanc", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="STOW-RS rounds (median)")
    args = parser.parse_args(argv)
    return Options(
        backends=backends(parser, args.backends),
        small=args.small,
        large=args.large,
        studies=args.studies,
        qido_repeats=args.qido_repeats,
        orthanc=not args.no_orthanc,
        pg_dsn=os.environ.get("BENCH_PG_DSN", DEFAULT_PG_DSN),
        rounds=max(1, args.rounds),
    )


def _guarded(what: str, work: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    try:
        return work(), True
    except Exception as error:  # reported in the JSON line; the rest still runs
        print(f"ingest: {what}: {error}", file=sys.stderr)
        return {"error": str(error).strip().splitlines()[0][:300]}, False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one JSON line; exit 1 when a part failed."""
    options = parse_args(argv)
    if shutil.which("storescu") is None:
        raise SystemExit("ingest: dcmtk's storescu is required (apt-get install dcmtk)")
    started = time.perf_counter()
    ok = True
    out: dict[str, Any] = {"benchmark": "ingest"}
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-ingest-") as name:
        tmp = Path(name)
        note("generating instances")
        files = generate(tmp / "files", options.small, options.large)
        out["files"] = {
            kind: {"count": len(f.data), "mb": round(f.total_bytes / MB, 1)}
            for kind, f in files.items()
        }
        plugin = orthanc_plugin() if options.orthanc else None
        if options.orthanc and (shutil.which("Orthanc") is None or plugin is None):
            out["orthanc"] = {"error": "Orthanc or its DICOMweb plugin is not installed"}
            ok = False
        systems: dict[str, Callable[[], FileFigures]] = {
            backend: partial(stow_doorstep, backend, options.pg_dsn, tmp, files)
            for backend in options.backends
        }
        if plugin is not None:
            systems["orthanc"] = partial(stow_orthanc, tmp, files, plugin)
        rounds: dict[str, list[FileFigures]] = {name: [] for name in systems}
        stow_figures: dict[str, dict[str, Any]] = {}
        for number in range(options.rounds):
            for name, run in systems.items():
                note(f"STOW-RS round {number + 1}/{options.rounds}: {name}")
                figures_, fine = _guarded(f"{name} STOW-RS", run)
                ok &= fine
                if fine:
                    rounds[name].append(figures_)
                else:
                    stow_figures[name] = figures_
        for name, runs in rounds.items():
            if runs and name not in stow_figures:
                stow_figures[name] = median_round(runs)
        out["doorstep"] = {}
        for backend in options.backends:
            out["doorstep"][backend], fine = _guarded(
                f"doorstep/{backend}",
                partial(measure_doorstep, backend, options.pg_dsn, tmp, files, options),
            )
            out["doorstep"][backend]["stow"] = stow_figures.get(backend, {})
            ok &= fine
        if plugin is not None:
            out["orthanc"], fine = _guarded("orthanc", lambda: measure_orthanc(tmp, files, plugin))
            out["orthanc"]["stow"] = stow_figures.get("orthanc", {})
            ok &= fine
            out["ratio_doorstep_over_orthanc"] = {
                backend: ratios(figures_, out["orthanc"])
                for backend, figures_ in out["doorstep"].items()
            }
    out["stow_batch"] = BATCH
    out["stow_concurrent_requests"] = CONCURRENT_REQUESTS
    out["stow_rounds"] = options.rounds
    out["cstore_scu"] = "dcmtk storescu, one association"
    out["duration_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
