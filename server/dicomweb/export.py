"""De-identified export: a visible study as a streamed zip of Part 10 files (PS3.15 Annex E).

Each instance is read from storage, de-identified and compressed in a worker thread, then
sent before the next one is read, so an export holds one instance in memory at a time.
Entry names are generated (``series-001/instance-0001.dcm``), never taken from DICOM values.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import zipfile
from dataclasses import dataclass

from aiohttp import hdrs, web
from sqlalchemy.ext.asyncio import AsyncSession

from dicom_tools.deidentify import Options, deidentify_file
from server import keys
from server.access import allow
from server.archive import service as archive
from server.archive.readers import request_reader
from server.archive.storage import BlobStorage
from server.context import db
from server.dicomweb.paths import ROLES, path_uid
from server.errors import MalformedInput, NotFound

log = logging.getLogger(__name__)

ZIP = "application/zip"
FILENAME = "deidentified-study.zip"
_FLAGS = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class _Export:
    """What every instance of one export shares: the pseudonym, the UID key and the options."""

    pseudonym: str
    uid_key: bytes
    options: Options


class _Pending:
    """A write-only stream for zipfile that keeps the bytes written until they are taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        """Keep a copy of data."""
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: the bytes wait for take()."""

    def close(self) -> None:
        """Nothing to release: zipfile leaves a stream it was given open anyway."""

    def take(self) -> bytes:
        """The bytes written since the last call."""
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false")
    if value not in _FLAGS:
        raise MalformedInput(f"{name} is true or false, not {value[:20]!r}.")
    return _FLAGS[value]


def entry_names(found: list[archive.StoredInstance]) -> list[str]:
    """A generated zip entry name per instance, numbering series and instances in order."""
    series: dict[str, int] = {}
    counts: dict[str, int] = {}
    names = []
    for item in found:
        number = series.setdefault(item.series_uid, len(series) + 1)
        counts[item.series_uid] = counts.get(item.series_uid, 0) + 1
        names.append(f"series-{number:03d}/instance-{counts[item.series_uid]:04d}.dcm")
    return names


def _add(
    zip_file: zipfile.ZipFile, name: str, storage: BlobStorage, sha256: str, export: _Export
) -> None:
    """De-identify one stored instance into the zip (runs in a worker thread)."""
    with storage.open(sha256) as source:
        data = deidentify_file(
            source, pseudonym=export.pseudonym, uid_key=export.uid_key, options=export.options
        )
    zip_file.writestr(name, data)


async def locate_export(
    *,
    session: AsyncSession,
    reader: archive.Reader,
    study_uid: str,
    pseudonym: str,
    options: Options,
) -> list[archive.StoredInstance]:
    """The visible instances of a study to export, with the export audited; empty if none."""
    found = await archive.locate_instances(
        session=session,
        reader=reader,
        study_uid=study_uid,
        purpose="export",
    )
    if found:
        reader.audit.record_apart(
            session,
            action="study.export",
            object_type="study",
            object_id=study_uid,
            org_id=reader.org_id,
            details={
                "retain_uids": options.retain_uids,
                "retain_dates": options.retain_dates,
                "instances": len(found),
                "pseudonym": pseudonym,
            },
        )
    return found


@allow(*ROLES)
async def export_study(request: web.Request) -> web.StreamResponse:
    """GET /dicom-web/studies/{study}/export: the study de-identified, as a zip."""
    study_uid = path_uid(request, "study")
    options = Options(
        retain_uids=_flag(request, "retain_uids"), retain_dates=_flag(request, "retain_dates")
    )
    export = _Export(f"ANON-{secrets.token_hex(6).upper()}", secrets.token_bytes(32), options)
    async with db(request) as session:
        found = await locate_export(
            session=session,
            reader=request_reader(request),
            study_uid=study_uid,
            pseudonym=export.pseudonym,
            options=options,
        )
    if not found:
        raise NotFound(f"No study {study_uid} in your organisation.")
    return await _stream(request, found, export)


async def _stream(
    request: web.Request, found: list[archive.StoredInstance], export: _Export
) -> web.StreamResponse:
    """Send the zip one instance at a time; on a failure, cut the connection mid-body."""
    storage = request.app[keys.ARCHIVE].storage
    response = web.StreamResponse(
        headers={
            hdrs.CONTENT_TYPE: ZIP,
            hdrs.CONTENT_DISPOSITION: f'attachment; filename="{FILENAME}"',
        }
    )
    await response.prepare(request)
    pending = _Pending()
    try:
        with zipfile.ZipFile(pending, "w", compression=zipfile.ZIP_DEFLATED) as zip_file:
            for name, item in zip(entry_names(found), found, strict=True):
                await asyncio.to_thread(_add, zip_file, name, storage, item.sha256, export)
                await response.write(pending.take())
        await response.write(pending.take())
    except Exception:
        # The status is sent: closing the connection is how the client learns the zip is cut.
        log.exception("export of study %s failed", found[0].study_uid)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
