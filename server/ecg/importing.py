"""HL7 aECG import: an XML document converted to a 12-Lead ECG instance and archived.

The API (`POST /api/v1/ecg/import`) and the browser upload (an .xml file) both call
`import_aecg`. The conversion runs in a worker thread; a refused document (not aECG,
ill-formed, entities, no leads, unknown units, beyond the IOD's limits) stores nothing
and is audited as a refused `dicom.store` with its reason. The converted instance is
stored through the Archive like any other, and its origin is the store's `source`
(recorded on the instance row and in its `dicom.store` audit event).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dicom_tools.aecg import AecgError, aecg_to_dicom
from dicom_tools.ecg_encoding import EcgEncodingError, PatientIdentity
from server.archive import service as archive
from server.audit.service import FAILURE, Recorder
from server.db import transaction
from server.errors import InvalidInput
from server.identity import Principal

API_SOURCE = "aecg-import"
"""The origin of instances converted from aECG sent to the API."""
UPLOAD_SOURCE = "upload-aecg"
"""The origin of instances converted from an .xml file of the browser upload."""
MAX_AECG_BYTES = 32 * 1024 * 1024
"""Largest aECG document accepted (a 10 s 12-lead 1000 Hz aECG is about 1 MiB)."""
XML_TYPES = frozenset({"application/xml", "text/xml"})


class AecgRefused(InvalidInput):
    """422: the document cannot be imported; details.reason is the stable code."""

    code = "invalid_aecg"


@dataclass(frozen=True, slots=True)
class Imported:
    """The archived instance of an imported aECG, and what the conversion left out."""

    result: archive.StoreResult
    notes: tuple[str, ...]

    @property
    def study_uid(self) -> str:
        """The new study's UID."""
        return self.result.study_uid or ""

    @property
    def sop_instance_uid(self) -> str:
        """The new instance's UID."""
        return self.result.sop_instance_uid or ""


async def _record_refusal(
    store: archive.Archive, audit: Recorder, caller: Principal, source: str, refused: AecgRefused
) -> None:
    async with transaction(store.session_maker) as session:
        await audit.record(
            session,
            action="dicom.store",
            outcome=FAILURE,
            object_type="aecg",
            org_id=caller.org_id,
            details={"source": source, **refused.details, "message": refused.message},
        )


async def import_aecg(
    *,
    store: archive.Archive,
    audit: Recorder,
    caller: Principal,
    data: bytes,
    source: str = API_SOURCE,
    patient: PatientIdentity | None = None,
) -> Imported:
    """Convert an aECG document and archive it in the caller's organisation.

    The document's subject is the instance's patient; ``patient`` (the uploader's
    choice) stands in when it names nobody. Raises AecgRefused (422) with the reason.
    """
    try:
        recording, instance = await asyncio.to_thread(aecg_to_dicom, data, patient=patient)
    except (AecgError, EcgEncodingError) as error:
        refused = AecgRefused(error.message, details={"reason": error.reason})
        await _record_refusal(store, audit, caller, source, refused)
        raise refused from None
    [result] = await store.store(audit=audit, org_id=caller.org_id, items=[instance], source=source)
    if not result.ok:  # the archive audited its refusal
        raise AecgRefused(
            f"The converted ECG was not stored: {result.message}",
            details={"reason": result.reason or result.outcome},
        )
    return Imported(result=result, notes=recording.notes)
