"""A signed report as a FHIR R4 DiagnosticReport.

Validated with fhir.resources' ``R4B`` models: fhir.resources 8.x builds R5 by default and
ships no R4 subpackage, only R4B (4.3) and STU3. DiagnosticReport, Reference, Identifier,
Attachment and CodeableConcept are unchanged from R4 to R4B, so a resource that validates
as R4B is a valid R4 DiagnosticReport.

An addendum points at the report it amends with the core extension
``http://hl7.org/fhir/StructureDefinition/diagnosticReport-addendumOf`` (a Reference to
that DiagnosticReport by its ``urn:doorstep:report`` identifier); the amended report itself
is offered with ``status="appended"``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

REPORT_SYSTEM = "urn:doorstep:report"
USER_SYSTEM = "urn:doorstep:user"
REQUEST_SYSTEM = "urn:doorstep:reading-request"
URL_SYSTEM = "urn:ietf:rfc:3986"
DICOM_UID_SYSTEM = "urn:dicom:uid"
LOINC = "http://loinc.org"
DIAGNOSTIC_SERVICE_SECTION = "http://terminology.hl7.org/CodeSystem/v2-0074"
ADDENDUM_OF = "http://hl7.org/fhir/StructureDefinition/diagnosticReport-addendumOf"
ECG_MODALITIES = frozenset({"ECG", "HD"})
STATUSES = frozenset(
    {"registered", "partial", "preliminary", "final", "amended", "corrected", "appended"}
)
"""DiagnosticReport.status codes a signed report may carry (R4 diagnostic-report-status)."""


def _is_ecg(record: Mapping[str, Any]) -> bool:
    modalities = (record.get("study") or {}).get("modalities") or []
    return any(str(modality) in ECG_MODALITIES for modality in modalities)


def _title(record: Mapping[str, Any]) -> str:
    if record.get("kind") == "addendum":
        return "Addendum"
    return "ECG report" if _is_ecg(record) else "Imaging report"


def display_name(pn: str) -> str:
    """A DICOM PN (Family^Given^Middle^Prefix^Suffix) as a person would write it."""
    if "^" not in pn:
        return pn.strip()
    family, given, middle, prefix, suffix = (pn.split("=")[0].split("^") + [""] * 5)[:5]
    return " ".join(part for part in (prefix, given, middle, family, suffix) if part.strip())


def _subject(patient: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Reference to the patient by identifier and name; None when both are empty."""
    subject: dict[str, Any] = {"type": "Patient"}
    if patient.get("id"):
        subject["identifier"] = {"value": str(patient["id"])}
    if patient.get("name"):
        subject["display"] = display_name(str(patient["name"]))
    return subject if len(subject) > 1 else None


def _report_reference(report_id: Any) -> dict[str, Any]:
    return {
        "type": "DiagnosticReport",
        "identifier": {"system": REPORT_SYSTEM, "value": str(report_id)},
    }


def attachment_hash(data: bytes) -> str:
    """Attachment.hash: the base64 of the SHA-1 of the data (FHIR R4 Attachment)."""
    return base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode("ascii")


def diagnostic_report(
    record: Mapping[str, Any],
    *,
    report_url: str,
    pdf_url: str,
    pdf: bytes,
    status: str = "final",
) -> dict[str, Any]:
    """The record as a validated FHIR R4 DiagnosticReport, a JSON-ready dict.

    ``report_url`` is carried as a second identifier (system urn:ietf:rfc:3986);
    ``status`` is ``final``, or ``appended`` for a report that has addenda.
    """
    if status not in STATUSES:
        raise ValueError(f"{status!r} is not a DiagnosticReport status.")
    ecg = _is_ecg(record)
    study = record.get("study") or {}
    signer = record.get("signer") or {}
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(record["report_id"]),
        "identifier": [
            {"use": "official", "system": REPORT_SYSTEM, "value": str(record["report_id"])},
            {"use": "secondary", "system": URL_SYSTEM, "value": report_url},
        ],
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": DIAGNOSTIC_SERVICE_SECTION,
                        "code": "EC",
                        "display": "Electrocardiac",
                    }
                    if ecg
                    else {
                        "system": DIAGNOSTIC_SERVICE_SECTION,
                        "code": "RAD",
                        "display": "Radiology",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": LOINC, "code": "11524-6", "display": "EKG study"}
                if ecg
                else {"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}
            ],
            "text": _title(record),
        },
        "issued": str(record["signed_at"]),
    }
    request = record.get("request") or {}
    if request.get("id") is not None:
        resource["basedOn"] = [
            {
                "type": "ServiceRequest",
                "identifier": {"system": REQUEST_SYSTEM, "value": str(request["id"])},
            }
        ]
    subject = _subject(record.get("patient") or {})
    if subject is not None:
        resource["subject"] = subject
    if study.get("study_date"):
        resource["effectiveDateTime"] = str(study["study_date"])
    if signer.get("organisation"):
        resource["performer"] = [{"type": "Organization", "display": str(signer["organisation"])}]
    interpreter: dict[str, Any] = {"type": "Practitioner"}
    if signer.get("username"):
        interpreter["identifier"] = {"system": USER_SYSTEM, "value": str(signer["username"])}
    if signer.get("display_name"):
        interpreter["display"] = str(signer["display_name"])
    if len(interpreter) > 1:
        resource["resultsInterpreter"] = [interpreter]
    if study.get("study_uid"):
        resource["imagingStudy"] = [
            {
                "type": "ImagingStudy",
                "identifier": {
                    "system": DICOM_UID_SYSTEM,
                    "value": f"urn:oid:{study['study_uid']}",
                },
            }
        ]
    addendum = record.get("kind") == "addendum"
    first, second = ("text", "impression") if addendum else ("impression", "text")
    conclusion = record.get(first) or record.get(second)
    if conclusion:
        resource["conclusion"] = str(conclusion)
    resource["presentedForm"] = [
        {
            "contentType": "application/pdf",
            "url": pdf_url,
            "size": len(pdf),
            "hash": attachment_hash(pdf),
            "title": _title(record),
            "creation": str(record["signed_at"]),
        }
    ]
    if addendum and record.get("amends") is not None:
        resource["extension"] = [
            {"url": ADDENDUM_OF, "valueReference": _report_reference(record["amends"])}
        ]
    model = DiagnosticReport.model_validate(resource)
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped
