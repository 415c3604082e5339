"""Browser uploads: zip members, photos and aECG into the archive, linked to the chosen patient.

A zip's acceptable members are stored through the Archive and its refused ones
are audited as one event; a photo becomes a Secondary Capture instance of the
patient; an HL7 aECG document becomes a 12-lead ECG (the ECG import service).
Linking the stored studies to the patient is the archive's audited action
(`server.archive.links`).
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import IO

from sqlalchemy.ext.asyncio import AsyncSession

from dicom_tools.ecg_encoding import PatientIdentity
from dicom_tools.secondary_capture import PhotoError, PhotoPatient, photo_to_secondary_capture
from server.archive import service as archive
from server.audit.service import FAILURE, Recorder
from server.db import transaction
from server.ecg import importing
from server.errors import InvalidInput, MalformedInput
from server.identity import Principal
from server.patients.models import Patient
from server.uploads import zips
from server.uploads.zips import FileResult

MAX_REFUSED_NAMES = 50
"""Names of refused members kept in the audit event (the counts cover them all)."""


def file_result(name: str, result: archive.StoreResult) -> FileResult:
    """What the archive did with one uploaded file, under the file's name."""
    return FileResult(
        name=name,
        outcome=result.outcome,
        reason=result.reason,
        message=result.message,
        study_uid=result.study_uid,
    )


async def store_zip(
    *, store: archive.Archive, audit: Recorder, caller: Principal, spool: IO[bytes]
) -> list[FileResult]:
    """Store every acceptable member of a spooled zip; refused members get a result only."""
    try:
        archive_file = await asyncio.to_thread(zips.open_zip, spool)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise MalformedInput("The upload is not a readable zip archive.") from None
    max_bytes = store.max_instance_bytes or zips.MAX_UNCOMPRESSED_BYTES
    entries: list[FileResult | str] = []  # a name: sent to the archive, result pending

    async def members() -> AsyncIterator[bytes]:
        budget, count = zips.MAX_UNCOMPRESSED_BYTES, 0
        for info in archive_file.infolist():
            if info.is_dir() or info.filename.startswith(zips.SKIPPED_PREFIXES):
                continue
            refused = zips.refusal(info, count, budget, max_bytes)
            count += 1
            if refused is not None:
                entries.append(refused)
                continue
            data = await asyncio.to_thread(zips.read_member, archive_file, info)
            if isinstance(data, FileResult):
                entries.append(data)
                continue
            budget -= len(data)
            entries.append(zips.label(info.filename))
            yield data

    with archive_file:
        stored = iter(
            await store.store(
                audit=audit, org_id=caller.org_id, items=members(), source="upload-zip"
            )
        )
    results = [e if isinstance(e, FileResult) else file_result(e, next(stored)) for e in entries]
    if not results:
        raise InvalidInput("The zip archive holds no files.")
    refused_members = [e for e in entries if isinstance(e, FileResult)]
    if refused_members:
        async with transaction(store.session_maker) as session:
            await _record_refusals(session, audit, refused_members)
    return results


async def _record_refusals(
    session: AsyncSession, audit: Recorder, refused: list[FileResult]
) -> None:
    """One audit event for the zip members refused before reaching the archive."""
    reasons: dict[str, int] = {}
    for result in refused:
        reasons[str(result.reason)] = reasons.get(str(result.reason), 0) + 1
    await audit.record(
        session,
        action="dicom.store",
        outcome=FAILURE,
        object_type="zip",
        details={
            "source": "upload-zip",
            "reasons": reasons,
            "names": [r.name for r in refused[:MAX_REFUSED_NAMES]],
        },
    )


async def store_photo(
    *,
    store: archive.Archive,
    audit: Recorder,
    caller: Principal,
    patient: Patient,
    image: bytes,
    filename: str,
    description: str,
) -> FileResult:
    """A JPEG/PNG of the patient, stored as a Secondary Capture instance."""
    try:
        instance = await asyncio.to_thread(
            photo_to_secondary_capture,
            image,
            patient=PhotoPatient(
                name=patient.name,
                patient_id=patient.identifier,
                birth_date=patient.birth_date.strftime("%Y%m%d"),
                sex=patient.sex,
            ),
            description=" ".join(description.split())[:64],
        )
    except PhotoError as error:
        raise InvalidInput(str(error)) from None
    [result] = await store.store(
        audit=audit, org_id=caller.org_id, items=[instance], source="upload-photo"
    )
    return file_result(zips.label(filename), result)


async def store_aecg(
    *,
    store: archive.Archive,
    audit: Recorder,
    caller: Principal,
    patient: Patient | None,
    document: bytes,
    filename: str,
) -> FileResult:
    """An HL7 aECG file converted to a 12-lead ECG and archived (source upload-aecg).

    A document naming no subject gets the chosen patient's details; a refused one
    raises the import's 422 and stores nothing.
    """
    identity = (
        PatientIdentity(
            name=patient.name,
            patient_id=patient.identifier,
            birth_date=patient.birth_date.strftime("%Y%m%d"),
            sex=patient.sex if patient.sex in ("M", "F", "O") else "",
        )
        if patient is not None
        else None
    )
    imported = await importing.import_aecg(
        store=store,
        audit=audit,
        caller=caller,
        data=document,
        source=importing.UPLOAD_SOURCE,
        patient=identity,
    )
    found = file_result(zips.label(filename), imported.result)
    return replace(found, message=" ".join(("Converted from HL7 aECG.", *imported.notes)))
