"""kill -9 of a real `doorstep serve` during concurrent STOW-RS uploads (issue 3, "Real peers").

The server runs as a subprocess on loopback with its own data directory (and, in
the PostgreSQL parametrisation, a fresh database that is dropped afterwards); its
organisation, user and token are made with the real CLI. Eight uploaders send
small distinct instances and remember every instance a STOW response
acknowledged (ReferencedSOPSequence) with the SHA-256 of the bytes sent. After
about 1.5 s the server gets SIGKILL mid-flight and is started again. Then every
acknowledged instance must come back through WADO-RS with the same SHA-256, no
staged (temporary) file may remain under `<data dir>/blobs/tmp/`, and the
restarted server must store and search normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import FileDataset
from pydicom.uid import generate_uid

from tests.support import free_port, port_open, require

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
PG_ADMIN = os.environ.get(
    "DOORSTEP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
UPLOADERS = 8
KILL_AFTER_S = 1.5
READY_TIMEOUT_S = 60.0
TEST_TIMEOUT_S = 180.0
DICOM_PARTS = 'multipart/related; type="application/dicom"'
ORG = "Durability Clinic"
USER = "durable.gp"


# --- instances ------------------------------------------------------------------------


class Generator:
    """Distinct small instances: CT_small.dcm with new SOP/Series UIDs and a zero preamble."""

    def __init__(self) -> None:
        path = get_testdata_file("CT_small.dcm", download=False)
        assert path is not None, "pydicom's bundled CT_small.dcm is missing"
        dataset = dcmread(path)
        assert isinstance(dataset, FileDataset)
        # The bundled file has a TIFF preamble, which the archive zeroes (CVE-2019-11687);
        # with a zero preamble the stored bytes are exactly the bytes sent.
        dataset.preamble = b"\0" * 128
        self.dataset = dataset
        self.study_uid = generate_uid()
        self.dataset.StudyInstanceUID = self.study_uid

    def make(self, series_uid: str, number: int) -> tuple[str, bytes]:
        """(SOP Instance UID, Part 10 bytes) of a new instance in the series."""
        ds = self.dataset
        sop_uid = generate_uid()
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SeriesInstanceUID = series_uid
        ds.InstanceNumber = number
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        return sop_uid, out.getvalue()


def multipart(parts: list[bytes]) -> tuple[bytes, str]:
    """A multipart/related body of application/dicom parts and its Content-Type."""
    boundary = secrets.token_hex(16).encode()
    body = b"".join(
        b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
        for part in parts
    )
    body += b"--" + boundary + b"--\r\n"
    return body, f"{DICOM_PARTS}; boundary={boundary.decode()}"


def referenced(body: dict[str, Any]) -> list[str]:
    """SOP Instance UIDs of a STOW response's ReferencedSOPSequence."""
    items = body.get("00081199", {}).get("Value", [])
    return [str(item["00081155"]["Value"][0]) for item in items]


# --- the server process -----------------------------------------------------------------


def _cli_command() -> list[str]:
    return [sys.executable, "-m", "server.cli"]


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*_cli_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"doorstep {' '.join(args[:2])}: {done.stderr[-2000:]}"
    return done.stdout


def _serve_args(port: int) -> list[str]:
    return ["serve", "--host", LOOPBACK, "--port", str(port), "--dicom-port", "0"]


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@dataclass
class Deployment:
    """A data directory (and database) provisioned through the CLI, and its server process."""

    env: dict[str, str]
    data_dir: Path
    token: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    base: str = ""
    starts: int = field(default=0)

    @property
    def staging(self) -> Path:
        return self.data_dir / "blobs" / "tmp"

    def start(self) -> None:
        """Start `doorstep serve` on a fresh loopback port and wait for /readyz."""
        assert self.process is None or self.process.poll() is not None
        port = free_port()
        self.base = f"http://{LOOPBACK}:{port}"
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n--- start {self.starts} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*_cli_command(), *_serve_args(port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while _http_status(f"{self.base}/readyz") != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"doorstep serve did not become ready:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM the server (SIGKILL if it lingers)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def _pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def _database(backend: str, data_dir: Path) -> Iterator[str]:
    """The database URL for the backend: SQLite in the data dir, or a fresh PostgreSQL one."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{data_dir / 'doorstep.db'}"
        return
    host_port = PG_ADMIN.split("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    require(port_open(host, int(port or 5432)), f"PostgreSQL does not answer on {host_port}")
    name = f"doorstep_crash_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """A provisioned deployment on the backend; its server is stopped afterwards."""
    data_dir = tmp_path / "data"
    with _database(str(request.param), data_dir) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
        env.update(
            DOORSTEP_DATA_DIR=str(data_dir),
            DOORSTEP_DATABASE_URL=url,
            DOORSTEP_SECRET_KEY="kill-9-test-secret-key-not-for-production",
            DOORSTEP_LOG_JSON="false",
            DOORSTEP_LOG_LEVEL="WARNING",
            # Eight clients at once from one account: above the default per-user limit of 3.
            DOORSTEP_MAX_UPLOADS_PER_USER="16",
        )
        _cli(env, "db", "upgrade")
        _cli(env, "org", "add", ORG, "--kind", "clinic")
        _cli(env, "user", "add", USER, "--org", ORG, "--role", "gp", "--no-password")
        token = _cli(env, "token", "create", USER).strip()
        found = Deployment(env=env, data_dir=data_dir, token=token, log=tmp_path / "server.log")
        try:
            yield found
        finally:
            found.stop()


# --- uploading and checking ---------------------------------------------------------------


@dataclass
class Ledger:
    """What was sent and what the server acknowledged before it died."""

    sent: dict[str, tuple[str, str]] = field(default_factory=dict)  # sop -> (series, sha256)
    acknowledged: dict[str, tuple[str, str]] = field(default_factory=dict)
    requests_acknowledged: int = 0
    requests_cut: int = 0
    study_uid: str = ""


async def _upload(
    session: aiohttp.ClientSession,
    deployment: Deployment,
    generator: Generator,
    ledger: Ledger,
    worker: int,
    stop: asyncio.Event,
) -> None:
    """Send batches of 1-6 new instances until the server goes away."""
    series_uid = generate_uid()
    number = 0
    headers = {"Authorization": f"Bearer {deployment.token}"}
    while not stop.is_set():
        batch: list[tuple[str, bytes]] = []
        for _ in range(1 + (number + worker) % 6):
            number += 1
            batch.append(generator.make(series_uid, number))
        for sop_uid, data in batch:
            ledger.sent[sop_uid] = (series_uid, hashlib.sha256(data).hexdigest())
        body, content_type = multipart([data for _, data in batch])
        try:
            async with session.post(
                f"{deployment.base}/dicom-web/studies",
                data=body,
                headers={**headers, "Content-Type": content_type},
            ) as response:
                payload = await response.json(content_type=None)
                assert response.status == 200, (response.status, payload)
        except (TimeoutError, aiohttp.ClientError):
            ledger.requests_cut += 1  # the server died under this request: nothing was promised
            return
        for sop_uid in referenced(payload):
            ledger.acknowledged[sop_uid] = ledger.sent[sop_uid]
        ledger.requests_acknowledged += 1


async def _upload_and_kill(deployment: Deployment) -> Ledger:
    generator = Generator()
    ledger = Ledger(study_uid=generator.study_uid)
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=UPLOADERS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        uploads = [
            asyncio.create_task(_upload(session, deployment, generator, ledger, worker, stop))
            for worker in range(UPLOADERS)
        ]
        await asyncio.sleep(KILL_AFTER_S)
        await asyncio.to_thread(deployment.kill)
        stop.set()
        await asyncio.gather(*uploads)
    return ledger


def _staged_files(staging: Path) -> list[Path]:
    """Files under blobs/tmp other than staging locks."""
    return sorted(p for p in staging.rglob("*") if p.is_file() and p.suffix != ".lock")


async def _retrieve_all(
    deployment: Deployment, study_uid: str, acknowledged: dict[str, tuple[str, str]]
) -> dict[str, str]:
    """SOP Instance UID -> SHA-256 of what WADO-RS returns (or the HTTP status on failure)."""
    headers = {"Authorization": f"Bearer {deployment.token}", "Accept": "application/dicom"}
    limit = asyncio.Semaphore(8)
    found: dict[str, str] = {}

    async def one(session: aiohttp.ClientSession, sop_uid: str, series_uid: str) -> None:
        url = (
            f"{deployment.base}/dicom-web/studies/{study_uid}/series/{series_uid}"
            f"/instances/{sop_uid}"
        )
        async with limit, session.get(url, headers=headers) as response:
            data = await response.read()
            found[sop_uid] = (
                hashlib.sha256(data).hexdigest()
                if response.status == 200
                else f"HTTP {response.status}"
            )

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(
            *(one(session, sop, series) for sop, (series, _) in acknowledged.items())
        )
    return found


async def _still_serves(deployment: Deployment, study_uid: str) -> None:
    """The restarted server stores a new instance and finds the study."""
    generator = Generator()
    sop_uid, data = generator.make(generate_uid(), 1)
    body, content_type = multipart([data])
    auth = {"Authorization": f"Bearer {deployment.token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.post(
            f"{deployment.base}/dicom-web/studies",
            data=body,
            headers={**auth, "Content-Type": content_type},
        ) as response:
            assert response.status == 200, await response.text()
            assert referenced(await response.json(content_type=None)) == [sop_uid]
        async with session.get(
            f"{deployment.base}/dicom-web/studies",
            params={"StudyInstanceUID": study_uid},
            headers={**auth, "Accept": "application/dicom+json"},
        ) as response:
            assert response.status == 200, await response.text()
            studies = await response.json(content_type=None)
            assert [s["0020000D"]["Value"][0] for s in studies] == [study_uid]


async def test_kill_9_during_concurrent_stow_loses_no_acknowledged_instance(
    deployment: Deployment,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        await asyncio.to_thread(deployment.start)
        ledger = await _upload_and_kill(deployment)
        study_uid = ledger.study_uid

        assert ledger.acknowledged, "no STOW request completed before the kill"
        assert ledger.requests_cut > 0, "the kill did not interrupt any upload"
        assert deployment.staging.is_dir()
        staged_at_kill = len(_staged_files(deployment.staging))
        print(  # shown with pytest -s: how much was in flight when the server died
            f"acknowledged {len(ledger.acknowledged)} of {len(ledger.sent)} instances sent in "
            f"{ledger.requests_acknowledged} requests; {ledger.requests_cut} requests cut; "
            f"{staged_at_kill} staged files left by the kill"
        )

        await asyncio.to_thread(deployment.start)
        leftovers = _staged_files(deployment.staging)
        assert leftovers == [], f"staged files survived recovery: {leftovers[:5]}"
        locks = sorted(p.name for p in deployment.staging.glob("*.lock"))
        assert len(locks) == 1, f"staging locks of dead processes remain: {locks}"

        retrieved = await _retrieve_all(deployment, study_uid, ledger.acknowledged)
        wrong = {
            sop: (sha, retrieved.get(sop))
            for sop, (_, sha) in ledger.acknowledged.items()
            if retrieved.get(sop) != sha
        }
        assert not wrong, f"{len(wrong)} of {len(ledger.acknowledged)} acknowledged instances " + (
            f"are missing or changed: {list(wrong.items())[:3]}"
        )

        # Every published blob, acknowledged or not, holds exactly the bytes its name says.
        root = deployment.data_dir / "blobs"
        blobs = [
            p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"
        ]
        assert len(blobs) >= len(ledger.acknowledged)
        for blob in blobs:
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name

        await _still_serves(deployment, study_uid)
        await asyncio.to_thread(deployment.stop)
