"""Helpers for the DIMSE tests: the listener, dcmtk runs, and what the archive holds."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import socket
import ssl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.filereader import read_dataset, read_preamble
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.association import Association
from sqlalchemy import select, update

from server import keys
from server.accounts import dicom_peers
from server.accounts.models import Organisation
from server.archive.models import Instance
from tests.support import require_tool

AE_TITLES = {"clinic-a": "CLINIC_A", "clinic-b": "CLINIC_B"}
VERIFICATION = "1.2.840.10008.1.1"


@dataclass(frozen=True)
class Listener:
    """Where the application's SCP listens."""

    app: web.Application
    host: str
    port: int
    ae_title: str


def bundled(name: str) -> Path:
    """A file bundled with pydicom (never downloaded)."""
    path = get_testdata_file(name, download=False)
    assert isinstance(path, str), f"{name} is not bundled with this pydicom"
    return Path(path)


async def dcmtk(
    tool: str, listener: Listener, calling: str, *options: str, files: tuple[Path, ...] = ()
) -> str:
    """Run a dcmtk SCU against the listener off the event loop; return rc and its output."""
    command = [require_tool(tool), "-aet", calling, "-aec", listener.ae_title, *options]
    command += [listener.host, str(listener.port), *map(str, files)]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )
    return f"rc={done.returncode}\n{done.stdout}{done.stderr}"


def dataset_bytes(part10: bytes) -> bytes:
    """The encoded dataset after the preamble and File Meta Information."""
    stream = io.BytesIO(part10)
    read_preamble(stream, False)
    read_dataset(stream, is_implicit_VR=False, is_little_endian=True, stop_when=_not_meta)
    return part10[stream.tell() :]


def _not_meta(tag: object, vr: object, length: object) -> bool:
    return getattr(tag, "group", 0) != 2


async def stored(listener: Listener, org_id: int) -> dict[str, Instance]:
    """The organisation's stored instances by SOP Instance UID."""
    async with listener.app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(select(Instance).where(Instance.org_id == org_id))
        return {row.sop_instance_uid: row for row in rows}


def blob(listener: Listener, sha: str) -> bytes:
    """The bytes the archive holds under a digest."""
    with listener.app[keys.ARCHIVE].storage.open(sha) as stream:
        return stream.read()


def scu(calling: str, contexts: Sequence[tuple[str, str]]) -> AE:
    """A pynetdicom SCU proposing (abstract syntax, transfer syntax) pairs."""
    ae = AE(ae_title=calling)
    for abstract, transfer in contexts:
        ae.add_requested_context(abstract, transfer)
    return ae


def associate(listener: Listener, ae: AE) -> Association:
    """An established association with the listener (call from a worker thread)."""
    assoc = ae.associate(listener.host, listener.port, ae_title=listener.ae_title)
    assert assoc.is_established
    return assoc


@dataclass(frozen=True)
class Attempt:
    """How an association request ended, as the SCU saw it."""

    established: bool
    rejected: bool
    rejection: tuple[int, int, int] | None  # (result, source, diagnostic) of A-ASSOCIATE-RJ
    echo: int | None  # C-ECHO status when established


def c_store(listener: Listener, data: bytes, *, calling: str = "CLINIC_A") -> int:
    """The C-STORE status of one Part 10 file sent by a pynetdicom SCU (from a worker thread)."""
    ds = dcmread(io.BytesIO(data))
    assoc = associate(listener, scu(calling, [(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)]))
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def attempt(
    listener: Listener,
    calling: str,
    *,
    bind: str = "",
    called: str | None = None,
    host: str | None = None,
    tls_args: tuple[ssl.SSLContext, str] | None = None,
) -> Attempt:
    """Request an association from a source address and C-ECHO when admitted (worker thread)."""
    ae = scu(calling, [(VERIFICATION, ExplicitVRLittleEndian)])
    ae.acse_timeout = ae.connection_timeout = ae.network_timeout = 10
    assoc = ae.associate(
        host or listener.host,
        listener.port,
        ae_title=called or listener.ae_title,
        bind_address=(bind, 0),
        tls_args=tls_args,
    )
    rejection = None
    if assoc.is_rejected:
        primitive = assoc.acceptor.primitive
        rejection = (primitive.result, primitive.result_source, primitive.diagnostic)
    echo = None
    established = assoc.is_established
    if established:
        try:
            echo = int(assoc.send_c_echo().Status)
        finally:
            assoc.release()
    return Attempt(established, assoc.is_rejected, rejection, echo)


async def set_peers(
    listener: Listener, org_id: int, networks: Sequence[str], cert_sha256: str | None = None
) -> None:
    """Give an organisation DICOM peer networks (and a pinned certificate) directly."""
    async with listener.app[keys.SESSIONMAKER]() as session, session.begin():
        await dicom_peers.set_networks(
            session=session, org_id=org_id, networks=dicom_peers.parse_networks(networks)
        )
        await session.execute(
            update(Organisation)
            .where(Organisation.id == org_id)
            .values(dicom_cert_sha256=cert_sha256)
        )


def outside_address() -> str | None:
    """A non-loopback address of this machine (the kernel routes it to lo here), if any."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("198.51.100.1", 9))  # no packet is sent
            address: str = probe.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(address).is_loopback else address
