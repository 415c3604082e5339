"""Query/Retrieve Service Class (PS3.4 Annex C): Study Root C-FIND at STUDY level.

Matching is the archive's (the same as QIDO-RS), scoped to the calling AE's organisation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicom_tools.status import FindStatus, GeneralStatus
from server.archive import matching
from server.archive import service as archive
from server.db import transaction
from server.dimse.scp import Peer, Scp
from server.dimse.status import status

log = logging.getLogger(__name__)

Response = tuple[int | Dataset, Dataset | None]

_LEVEL = "STUDY"


def handle_find(event: Any, scp: Scp) -> Iterator[Response]:
    """EVT_C_FIND: one pending response per matching study, honouring C-CANCEL."""
    found = _find(event, scp)
    if isinstance(found, Dataset):
        yield found, None
        return
    for values in found:
        if event.is_cancelled:
            yield FindStatus.MATCHING_TERMINATED_DUE_TO_CANCEL, None
            return
        yield FindStatus.PENDING, response(event.identifier, values)
    yield GeneralStatus.SUCCESS, None


def _find(event: Any, scp: Scp) -> list[dict[str, Any]] | Dataset:
    """The matching studies' values, or the failure status to answer with."""
    peer = scp.peer(event.assoc)
    if peer is None or peer.org_id is None:
        return status(
            GeneralStatus.REFUSED_NOT_AUTHORIZED, "calling AE title belongs to no organisation"
        )
    try:
        identifier: Dataset = event.identifier
        level = str(identifier.get("QueryRetrieveLevel", ""))
        keys = matching_keys(identifier)
    except Exception:
        log.exception("C-FIND identifier from %s could not be decoded", peer.ae_title)
        return status(FindStatus.UNABLE_TO_PROCESS, "the identifier could not be decoded")
    if level != _LEVEL:
        return status(FindStatus.UNABLE_TO_PROCESS, f"only STUDY level is supported, not {level}")
    try:
        return scp.run(_search(scp, peer, peer.org_id, keys))
    except matching.InvalidQuery as error:
        return status(FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, error.message)
    except TimeoutError:
        return status(FindStatus.REFUSED_OUT_OF_RESOURCES, "the archive is busy, try again")
    except Exception:
        log.exception("C-FIND from %s failed", peer.ae_title)
        return status(GeneralStatus.PROCESSING_FAILURE, "the archive failed to search")


def matching_keys(identifier: Dataset) -> dict[str, str]:
    """The identifier's study-level matching keys with a value, as the archive matches them."""
    supported = matching.matching_keys("study")
    keys = {}
    for element in identifier:
        if element.keyword in supported and element.VR != "SQ" and element.value not in (None, ""):
            value = element.value
            keys[element.keyword] = (
                "\\".join(str(v) for v in value) if isinstance(value, MultiValue) else str(value)
            )
    return keys


async def _search(scp: Scp, peer: Peer, org_id: int, keys: dict[str, str]) -> list[dict[str, Any]]:
    async with transaction(scp.session_maker) as session:
        matches = await archive.search_studies(
            session=session,
            reader=archive.organisation_reader(org_id, scp.audit(peer)),
            keys=keys,
            fuzzy=False,
            limit=scp.settings.dimse_max_find_results,
            offset=0,
        )
        return [_values(match) for match in matches]


def _values(match: archive.StudyMatch) -> dict[str, Any]:
    """Every study-level return key the archive can answer, by keyword."""
    study = match.study
    return {
        "StudyInstanceUID": study.study_uid,
        "PatientID": study.patient_id,
        "PatientName": study.patient_name,
        "PatientBirthDate": study.patient_birth_date,
        "PatientSex": study.patient_sex,
        "StudyDate": study.study_date,
        "StudyTime": study.study_time,
        "AccessionNumber": study.accession_number,
        "StudyID": study.study_id,
        "StudyDescription": study.study_description,
        "ReferringPhysicianName": study.referring_physician_name,
        "ModalitiesInStudy": list(match.modalities),
        "SOPClassesInStudy": list(match.sop_classes),
        "NumberOfStudyRelatedSeries": match.number_of_series,
        "NumberOfStudyRelatedInstances": match.number_of_instances,
    }


def response(identifier: Dataset, values: dict[str, Any]) -> Dataset:
    """A pending response: the requested keys with the study's values, others empty."""
    ds = Dataset()
    ds.QueryRetrieveLevel = _LEVEL
    for element in identifier:
        if element.keyword in ("QueryRetrieveLevel", "SpecificCharacterSet", ""):
            continue
        ds.add_new(element.tag, element.VR, values.get(element.keyword))
    text = [v for v in values.values() if isinstance(v, str)]
    if any(not v.isascii() for v in text):
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds
