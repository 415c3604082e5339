"""GP upload page: DICOM files go to STOW-RS from the browser; zips, photos and aECG come here.

A zip is spooled to a temporary file and handed to the uploads service; a photo
is read from its form; an HL7 aECG .xml file is converted to a 12-lead ECG by the
ECG import service. Uploaded studies are linked to the chosen patient. These
handlers answer in JSON (the page's script reads them), never with an HTML page.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from typing import IO, TYPE_CHECKING

from aiohttp import BodyPartReader, web

from dicom_tools.secondary_capture import sniff
from dicom_tools.uids import is_valid_uid
from server import keys
from server.access import allow
from server.archive import links
from server.context import db, principal, recorder
from server.ecg import importing
from server.ecg.import_views import read_xml
from server.errors import (
    DomainError,
    InvalidInput,
    MalformedInput,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from server.forms import query_id
from server.identity import Role
from server.patients import lookup
from server.patients import service as patients
from server.patients.display import patient_view
from server.templates import render
from server.uploads import service as uploads
from server.uploads.zips import MAX_MEMBERS, MAX_ZIP_BYTES, FileResult, label

if TYPE_CHECKING:
    from server.patients.models import Patient

PATIENT_CHOICES = 500
MAX_PHOTO_BYTES = 25 * 1024 * 1024
MAX_LINKED_STUDIES = 1000
ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})
_CHUNK = 256 * 1024
_SPOOL_IN_MEMORY = 8 * 1024 * 1024


def _json_error(error: DomainError) -> web.Response:
    return web.json_response(
        {"error": {"code": error.code, "message": error.message, "details": error.details}},
        status=error.status,
    )


Uploaded = tuple[list[FileResult], list[dict[str, object]]]
"""An upload's per-file results and the studies left unlinked for naming someone else."""


async def _answering_json(work: Callable[[], Awaitable[Uploaded]]) -> web.Response:
    """Run an upload; results or the documented error body, as JSON, never an HTML page."""
    try:
        results, mismatches = await work()
    except DomainError as error:
        return _json_error(error)
    return web.json_response({"results": [asdict(r) for r in results], "mismatches": mismatches})


@allow(Role.GP, page=True)
async def upload_page(request: web.Request) -> web.StreamResponse:
    """GET /upload: drop files, a folder or a zip; choose the patient they belong to."""
    async with db(request) as session:
        rows = await patients.search(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            q="",
            limit=PATIENT_CHOICES,
            offset=0,
        )
        chosen = query_id(request, "patient")
        if chosen is not None and all(p.id != chosen for p in rows):
            found = await patients.get(
                session=session,
                caller=principal(request),
                audit=recorder(request),
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
        max_aecg_mb=importing.MAX_AECG_BYTES // (1024 * 1024),
    )


def _patient_id(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        raise InvalidInput("Choose one of your patients.")
    return int(value)


async def _link(
    request: web.Request,
    patient: Patient,
    study_uids: Iterable[str | None],
    source: str,
    *,
    confirmed: bool = False,
) -> links.LinkResult:
    """Link visible uploaded studies to the patient; those naming someone else wait."""
    async with db(request) as session:
        return await links.link_patient(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            patient=patient,
            study_uids=[uid for uid in study_uids if uid],
            source=source,
            confirmed=confirmed,
        )


def _mismatches(patient: Patient, result: links.LinkResult) -> list[dict[str, object]]:
    """The studies left unlinked, as the page shows them to be confirmed or sent elsewhere."""
    return [
        {
            "patient": patient.id,
            "study_uid": m.study_uid,
            "differences": [asdict(d) for d in m.differences],
        }
        for m in result.mismatches
    ]


@allow(Role.GP, page=True)
async def upload_link(request: web.Request) -> web.StreamResponse:
    """POST /upload/link: JSON {patient, studies, confirm?}: the patient uploaded studies show.

    Studies whose files name someone else are left unlinked and listed as mismatches,
    unless confirm is true: then they are linked, and the link records who confirmed.
    """
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
        confirm = body.get("confirm", False)
        if not isinstance(confirm, bool):
            raise InvalidInput("confirm must be true or false.")
        if (
            not isinstance(patient_id, int)
            or isinstance(patient_id, bool)
            or not 0 < patient_id <= patients.MAX_ID
        ):
            raise InvalidInput("Choose one of your patients.")
        if (
            not isinstance(studies, list)
            or len(studies) > MAX_LINKED_STUDIES
            or not all(isinstance(s, str) and is_valid_uid(s) for s in studies)
        ):
            raise InvalidInput(f"Send at most {MAX_LINKED_STUDIES} Study Instance UIDs.")
        patient = await lookup.visible_patient(request, patient_id)
        result = await _link(request, patient, studies, "stow-rs", confirmed=confirm)
    except DomainError as error:
        return _json_error(error)
    return web.json_response(
        {
            "patient": patient.id,
            "linked": result.linked,
            "mismatches": _mismatches(patient, result),
        }
    )


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


@allow(Role.GP, page=True)
async def upload_zip(request: web.Request) -> web.StreamResponse:
    """POST /upload/zip[?patient=ID]: store each DICOM member of an application/zip body."""

    async def work() -> Uploaded:
        if request.content_type not in ZIP_TYPES:
            raise UnsupportedMediaType("Send the zip archive as application/zip.")
        chosen = request.query.get("patient", "")
        patient = await lookup.visible_patient(request, _patient_id(chosen)) if chosen else None
        archive = request.app[keys.ARCHIVE]
        async with archive.upload_slot(principal(request).user_id):
            with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
                await _spool(request, spool)
                results = await uploads.store_zip(
                    store=archive,
                    audit=recorder(request),
                    caller=principal(request),
                    spool=spool,
                )
        if patient is None:
            return results, []
        linked = await _link(request, patient, (r.study_uid for r in results if r.ok), "upload-zip")
        return results, _mismatches(patient, linked)

    return await _answering_json(work)


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


@allow(Role.GP, page=True)
async def upload_photo(request: web.Request) -> web.StreamResponse:
    """POST /upload/photo: a JPEG/PNG of a patient, stored as a Secondary Capture instance."""

    async def work() -> Uploaded:
        async with request.app[keys.ARCHIVE].upload_slot(principal(request).user_id):
            return await _photo(request), []

    return await _answering_json(work)


async def _photo(request: web.Request) -> list[FileResult]:
    """Read the photo form, store the photo for its patient and link the study."""
    fields, image, filename = await _photo_form(request)
    if not fields.get("patient"):
        raise InvalidInput("Choose the patient the photo belongs to.")
    if sniff(image) is None:
        raise UnsupportedMediaType(f"{label(filename)} is not a JPEG or PNG image.")
    patient = await lookup.visible_patient(request, _patient_id(fields["patient"]))
    found = await uploads.store_photo(
        store=request.app[keys.ARCHIVE],
        audit=recorder(request),
        caller=principal(request),
        patient=patient,
        image=image,
        filename=filename,
        description=fields.get("description", ""),
    )
    if found.ok:
        await _link(request, patient, [found.study_uid], "upload-photo")
    return [found]


@allow(Role.GP, page=True)
async def upload_aecg(request: web.Request) -> web.StreamResponse:
    """POST /upload/aecg[?patient=ID][&name=file.xml]: an HL7 aECG document (application/xml).

    Converted to a 12-lead ECG instance and archived like the API's import (source
    upload-aecg); a document naming no subject gets the chosen patient's details.
    """

    async def work() -> Uploaded:
        chosen = request.query.get("patient", "")
        patient = await lookup.visible_patient(request, _patient_id(chosen)) if chosen else None
        async with request.app[keys.ARCHIVE].upload_slot(principal(request).user_id):
            result = await uploads.store_aecg(
                store=request.app[keys.ARCHIVE],
                audit=recorder(request),
                caller=principal(request),
                patient=patient,
                document=await read_xml(request),
                filename=request.query.get("name", "") or "ECG.xml",
            )
        if patient is None:
            return [result], []
        linked = await _link(request, patient, [result.study_uid], importing.UPLOAD_SOURCE)
        return [result], _mismatches(patient, linked)

    return await _answering_json(work)
