"""GP upload page: DICOM files go to STOW-RS from the browser; zips and photos come here.

A zip is spooled to a temporary file and read member by member; member names
are only labels, never paths. A photo becomes a Secondary Capture instance of
the chosen patient. Uploaded studies are linked to the chosen patient
(`archive.links`), and each link is an audit event (`study.patient_link`).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import IO

from aiohttp import BodyPartReader, web

from dicom_tools.secondary_capture import (
    PhotoError,
    PhotoPatient,
    photo_to_secondary_capture,
    sniff,
)
from dicom_tools.uids import is_valid_uid
from server import keys
from server.access import allow
from server.accounts.models import Role
from server.archive import links
from server.archive import service as archive
from server.audit import service as audit
from server.errors import (
    DomainError,
    InvalidInput,
    MalformedInput,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from server.pages.forms import query_id
from server.pages.patients import patient_view
from server.patients import lookup
from server.patients import service as patients
from server.patients.models import Patient
from server.requests import actor, db, principal
from server.templates import render

PATIENT_CHOICES = 500
MAX_ZIP_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS = 1000
MAX_ENTRIES = 10 * MAX_MEMBERS
"""Entries (files and folders) a zip may declare before it is refused unread."""
MAX_UNCOMPRESSED_BYTES = 2 * 1024 * 1024 * 1024
MAX_RATIO = 100
"""Uncompressed/compressed size above which a member larger than RATIO_FLOOR is a bomb."""
RATIO_FLOOR = 1024 * 1024
MAX_PHOTO_BYTES = 25 * 1024 * 1024
MAX_LINKED_STUDIES = 1000
ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})
_CHUNK = 256 * 1024
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_SKIPPED_PREFIXES = ("__MACOSX/",)
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_EOCD_SEARCH = 22 + 65535


@dataclass(frozen=True, slots=True)
class FileResult:
    """What happened to one uploaded file or zip member."""

    name: str
    outcome: str
    reason: str | None = None
    message: str = ""
    study_uid: str | None = None


def _json_error(error: DomainError) -> web.Response:
    return web.json_response(
        {"error": {"code": error.code, "message": error.message, "details": error.details}},
        status=error.status,
    )


async def _answering_json(work: Callable[[], Awaitable[list[FileResult]]]) -> web.Response:
    """Run an upload; results or the documented error body, as JSON, never an HTML page."""
    try:
        results = await work()
    except DomainError as error:
        return _json_error(error)
    return web.json_response({"results": [asdict(r) for r in results]})


# The page ---------------------------------------------------------------------


@allow(Role.GP, page=True)
async def upload_page(request: web.Request) -> web.StreamResponse:
    """GET /upload: drop files, a folder or a zip; choose the patient they belong to."""
    async with db(request) as session, session.begin():
        rows = await patients.search(
            session=session,
            secret=request.app[keys.SECRET],
            caller=principal(request),
            actor=actor(request),
            q="",
            limit=PATIENT_CHOICES,
            offset=0,
        )
        chosen = query_id(request, "patient")
        if chosen is not None and all(p.id != chosen for p in rows):
            found = await patients.get(
                session=session,
                secret=request.app[keys.SECRET],
                caller=principal(request),
                actor=actor(request),
                patient_id=chosen,
            )
            rows = [found, *rows] if found is not None else rows
    return render(
        request,
        "upload/upload.html",
        patients=[patient_view(p) for p in rows],
        chosen=chosen,
        max_photo_mb=MAX_PHOTO_BYTES // (1024 * 1024),
        max_members=MAX_MEMBERS,
    )


# Patients and links -------------------------------------------------------------


def _patient_id(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        raise InvalidInput("Choose one of your patients.")
    return int(value)


async def _link(
    request: web.Request, patient: Patient, study_uids: Iterable[str], source: str
) -> list[str]:
    """Link visible uploaded studies to the patient; returns the studies linked."""
    async with db(request) as session, session.begin():
        return await links.link_patient(
            session=session,
            secret=request.app[keys.SECRET],
            caller=principal(request),
            actor=actor(request),
            patient=patient,
            study_uids=study_uids,
            source=source,
        )


async def _store(
    request: web.Request, items: AsyncIterator[bytes], source: str
) -> list[archive.StoreResult]:
    settings = request.app[keys.SETTINGS]
    return await archive.store_instances(
        session_maker=request.app[keys.SESSIONMAKER],
        writes=request.app[keys.WRITES],
        storage=request.app[keys.BLOB_STORAGE],
        secret=request.app[keys.SECRET],
        actor=actor(request),
        org_id=principal(request).org_id,
        items=items,
        source=source,
        conflict=settings.archive_conflict,
        max_instance_bytes=settings.max_instance_bytes,
        max_inflated_bytes=settings.max_inflated_bytes,
    )


def _file_result(name: str, result: archive.StoreResult) -> FileResult:
    return FileResult(
        name=name,
        outcome=result.outcome,
        reason=result.reason,
        message=result.message,
        study_uid=result.study_uid,
    )


@allow(Role.GP, page=True)
async def upload_link(request: web.Request) -> web.StreamResponse:
    """POST /upload/link: JSON {patient, studies}; records which patient uploaded studies show."""
    try:
        if request.content_type != "application/json":
            raise UnsupportedMediaType("Send the link as application/json.")
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise MalformedInput("The link is not valid JSON.") from None
        if not isinstance(body, dict):
            raise MalformedInput("The link must be a JSON object.")
        patient_id, studies = body.get("patient"), body.get("studies")
        if not isinstance(patient_id, int) or isinstance(patient_id, bool):
            raise InvalidInput("Choose one of your patients.")
        if (
            not isinstance(studies, list)
            or len(studies) > MAX_LINKED_STUDIES
            or not all(isinstance(s, str) and is_valid_uid(s) for s in studies)
        ):
            raise InvalidInput(f"Send at most {MAX_LINKED_STUDIES} Study Instance UIDs.")
        patient = await lookup.visible_patient(request, patient_id)
        linked = await _link(request, patient, studies, "stow-rs")
    except DomainError as error:
        return _json_error(error)
    return web.json_response({"patient": patient.id, "linked": linked})


# Zip archives -------------------------------------------------------------------


def _unsafe_name(name: str) -> bool:
    """True for names that would escape a folder if anyone used them as a path."""
    parts = name.replace("\\", "/").split("/")
    return (
        name.startswith(("/", "\\"))
        or ".." in parts
        or "\x00" in name
        or (len(name) > 1 and name[1] == ":")
    )


def _label(name: str) -> str:
    """A printable, bounded label for a member name."""
    printable = "".join(c if c.isprintable() else "?" for c in name)
    return printable[-200:]


def _rejected(name: str, reason: str, message: str) -> FileResult:
    return FileResult(name=_label(name), outcome="rejected", reason=reason, message=message)


def _refusal(info: zipfile.ZipInfo, members: int, budget: int, max_bytes: int) -> FileResult | None:
    """Why a member is refused before reading it, or None when it may be read."""
    name = info.filename
    if _unsafe_name(name):
        return _rejected(name, "unsafe_name", "The name points outside the archive's folder.")
    if members >= MAX_MEMBERS:
        return _rejected(
            name, "too_many_members", f"Only the first {MAX_MEMBERS} files of a zip are read."
        )
    if info.flag_bits & 0x1:
        return _rejected(name, "encrypted", "Encrypted zip members cannot be read.")
    if info.file_size > max_bytes:
        return _rejected(name, "too_large", f"The file is larger than {max_bytes} bytes.")
    if info.file_size > budget:
        return _rejected(
            name,
            "too_large",
            f"The zip unpacks to more than {MAX_UNCOMPRESSED_BYTES} bytes in total.",
        )
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return _rejected(
            name,
            "zip_bomb",
            f"The file is compressed more than {MAX_RATIO}:1; it looks like a zip bomb.",
        )
    return None


def _read_member(archive_file: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | FileResult:
    """The member's bytes (never more than its declared size), or why it cannot be read."""
    try:
        with archive_file.open(info) as member:
            return member.read(info.file_size + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError) as error:
        return _rejected(info.filename, "unreadable", f"The zip member cannot be read: {error}")


async def _spool(request: web.Request, spool: IO[bytes]) -> None:
    """Copy the request body into the spool file, refusing more than MAX_ZIP_BYTES."""
    if (request.content_length or 0) > MAX_ZIP_BYTES:
        raise PayloadTooLarge(f"The zip is larger than the limit of {MAX_ZIP_BYTES} bytes.")
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > MAX_ZIP_BYTES:
            raise PayloadTooLarge(f"The zip is larger than the limit of {MAX_ZIP_BYTES} bytes.")
        await asyncio.to_thread(spool.write, chunk)
    if size == 0:
        raise MalformedInput("The request holds no zip archive.")


def declared_entries(spool: IO[bytes]) -> int | None:
    """The entry count in a zip's end-of-central-directory record (ZIP64 too), None if absent."""
    size = spool.seek(0, 2)
    start = max(0, size - _EOCD_SEARCH)
    spool.seek(start)
    tail = spool.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return None
    entries = int.from_bytes(tail[at + 10 : at + 12], "little")
    locator = at - 20
    if entries == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == _EOCD64_LOCATOR:
        offset = int.from_bytes(tail[locator + 8 : locator + 16], "little")
        spool.seek(offset)
        record = spool.read(40)
        if record[:4] == _EOCD64 and len(record) == 40:
            entries = int.from_bytes(record[32:40], "little")
    return entries


def _open_zip(spool: IO[bytes]) -> zipfile.ZipFile:
    """The zip archive, refused before its central directory is parsed if it is too big."""
    entries = declared_entries(spool)
    if entries is None:
        raise MalformedInput("The upload is not a readable zip archive.")
    if entries > MAX_ENTRIES:
        raise InvalidInput(f"The zip holds {entries} entries; at most {MAX_ENTRIES} are read.")
    spool.seek(0)
    return zipfile.ZipFile(spool)


async def _audit_refusals(request: web.Request, refused: list[FileResult]) -> None:
    """One audit event for the zip members refused before reaching the archive."""
    reasons: dict[str, int] = {}
    for result in refused:
        reasons[str(result.reason)] = reasons.get(str(result.reason), 0) + 1
    async with db(request) as session, session.begin():
        await audit.record(
            session=session,
            secret=request.app[keys.SECRET],
            actor=actor(request),
            action="dicom.store",
            outcome=audit.FAILURE,
            object_type="zip",
            details={
                "source": "upload-zip",
                "reasons": reasons,
                "names": [r.name for r in refused[:50]],
            },
        )


async def _store_zip(request: web.Request, spool: IO[bytes]) -> list[FileResult]:
    """Store every acceptable member; refused members get a result without being stored."""
    try:
        archive_file = await asyncio.to_thread(_open_zip, spool)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise MalformedInput("The upload is not a readable zip archive.") from None
    max_bytes = request.app[keys.SETTINGS].max_instance_bytes
    entries: list[FileResult | str] = []  # a name: sent to the archive, result pending

    async def members() -> AsyncIterator[bytes]:
        budget, count = MAX_UNCOMPRESSED_BYTES, 0
        for info in archive_file.infolist():
            if info.is_dir() or info.filename.startswith(_SKIPPED_PREFIXES):
                continue
            refusal = _refusal(info, count, budget, max_bytes)
            count += 1
            if refusal is not None:
                entries.append(refusal)
                continue
            data = await asyncio.to_thread(_read_member, archive_file, info)
            if isinstance(data, FileResult):
                entries.append(data)
                continue
            budget -= len(data)
            entries.append(_label(info.filename))
            yield data

    with archive_file:
        stored = iter(await _store(request, members(), "upload-zip"))
    results = [e if isinstance(e, FileResult) else _file_result(e, next(stored)) for e in entries]
    if not results:
        raise InvalidInput("The zip archive holds no files.")
    refused = [e for e in entries if isinstance(e, FileResult)]
    if refused:
        await _audit_refusals(request, refused)
    return results


@allow(Role.GP, page=True)
async def upload_zip(request: web.Request) -> web.StreamResponse:
    """POST /upload/zip[?patient=ID]: store each DICOM member of an application/zip body."""

    async def work() -> list[FileResult]:
        if request.content_type not in ZIP_TYPES:
            raise UnsupportedMediaType("Send the zip archive as application/zip.")
        chosen = request.query.get("patient", "")
        patient = await lookup.visible_patient(request, _patient_id(chosen)) if chosen else None
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            await _spool(request, spool)
            results = await _store_zip(request, spool)
        if patient is not None:
            await _link(
                request,
                patient,
                (r.study_uid for r in results if _ok(r) and r.study_uid),
                "upload-zip",
            )
        return results

    return await _answering_json(work)


def _ok(result: FileResult) -> bool:
    return result.outcome in ("stored", "duplicate", "replaced")


# Photos -------------------------------------------------------------------------


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"The photo is larger than the limit of {limit} bytes.")
    return bytes(data)


async def _photo_form(request: web.Request) -> tuple[dict[str, str], bytes, str]:
    """The text fields, the image bytes and its file name from a multipart/form-data body."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("Send the photo as multipart/form-data.")
    if (request.content_length or 0) > MAX_PHOTO_BYTES + 64 * 1024:
        raise PayloadTooLarge(f"The photo is larger than the limit of {MAX_PHOTO_BYTES} bytes.")
    fields: dict[str, str] = {}
    image, filename = b"", ""
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise MalformedInput("Nested multipart bodies are not accepted.")
            if part.name == "image":
                image, filename = await _read_part(part, MAX_PHOTO_BYTES), part.filename or "photo"
            elif part.name in ("patient", "description"):
                text = await _read_part(part, 1024)
                fields[part.name] = text.decode("utf-8", "replace").strip()
    except ValueError as error:
        raise MalformedInput(f"The form cannot be read: {error}") from None
    if not image:
        raise InvalidInput("Choose a photo to upload.")
    return fields, image, filename


def _photo_patient(patient: Patient) -> PhotoPatient:
    return PhotoPatient(
        name=patient.name,
        patient_id=patient.identifier,
        birth_date=patient.birth_date.strftime("%Y%m%d"),
        sex=patient.sex,
    )


@allow(Role.GP, page=True)
async def upload_photo(request: web.Request) -> web.StreamResponse:
    """POST /upload/photo: a JPEG/PNG of a patient, stored as a Secondary Capture instance."""

    async def work() -> list[FileResult]:
        fields, image, filename = await _photo_form(request)
        if not fields.get("patient"):
            raise InvalidInput("Choose the patient the photo belongs to.")
        if sniff(image) is None:
            raise UnsupportedMediaType(f"{_label(filename)} is not a JPEG or PNG image.")
        patient = await lookup.visible_patient(request, _patient_id(fields["patient"]))
        try:
            instance = await asyncio.to_thread(
                photo_to_secondary_capture,
                image,
                patient=_photo_patient(patient),
                description=" ".join(fields.get("description", "").split())[:64],
            )
        except PhotoError as error:
            raise InvalidInput(str(error)) from None

        async def one() -> AsyncIterator[bytes]:
            yield instance

        [result] = await _store(request, one(), "upload-photo")
        found = _file_result(_label(filename), result)
        if _ok(found) and found.study_uid:
            await _link(request, patient, [found.study_uid], "upload-photo")
        return [found]

    return await _answering_json(work)
