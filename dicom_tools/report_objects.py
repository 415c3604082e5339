"""A signed report stored back into its study: Encapsulated PDF and Comprehensive SR instances.

Both builders are pure: the same record, PDF and evidence header give the same dataset
(no clock is read; every date comes from the record's ``signed_at``). Patient and study
attributes are copied from ``evidence`` (any instance header of the study) and nothing else
of it: PatientName, PatientID, PatientBirthDate, PatientSex, StudyInstanceUID, StudyDate,
StudyTime, AccessionNumber, ReferringPhysicianName, StudyID, StudyDescription.

highdicom 0.28 has no Encapsulated PDF class, so that IOD (PS3.3 A.45.1) is built with
pydicom module by module; the SR is highdicom's ``ComprehensiveSR``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import highdicom as hd
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.uid import UID, ExplicitVRLittleEndian

ENCAPSULATED_PDF_STORAGE = UID("1.2.840.10008.5.1.4.1.1.104.1")
COMPREHENSIVE_SR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.88.33")
MANUFACTURER = "Doorstep"
CHARACTER_SET = "ISO_IR 192"
"""UTF-8: report text and names may hold any character."""
LO_MAX = 64
"""The longest LO (and PN component group) value, PS3.5 6.2."""

PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "StudyDescription",
)
"""The Patient and General Study attributes copied from the evidence header (type 2 empty)."""

ECG_MODALITIES = frozenset({"ECG", "HD"})
EKG_STUDY = hd.sr.CodedConcept(value="11524-6", scheme_designator="LN", meaning="EKG study")
IMAGING_STUDY = hd.sr.CodedConcept(
    value="18748-4", scheme_designator="LN", meaning="Diagnostic imaging study"
)


def _ucum(unit: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=unit, scheme_designator="UCUM", meaning=unit)


MEASUREMENT_CODES: Mapping[str, tuple[str, str, str]] = {
    "heart_rate_bpm": ("8867-4", "Heart rate", "{beats}/min"),
    "rr_ms": ("8637-1", "R-R interval", "ms"),
    "pr_ms": ("8625-6", "P-R Interval", "ms"),
    "qrs_ms": ("8633-0", "QRS duration", "ms"),
    "qt_ms": ("8634-8", "Q-T interval", "ms"),
    "qtc_ms": ("8636-3", "Q-T interval corrected", "ms"),
    "qtc_bazett_ms": ("8636-3", "Q-T interval corrected", "ms"),
    "qtc_fridericia_ms": ("8636-3", "Q-T interval corrected", "ms"),
    "axis_deg": ("8632-2", "QRS axis", "deg"),
    "qrs_axis_deg": ("8632-2", "QRS axis", "deg"),
    "p_axis_deg": ("9924-2", "P wave axis", "deg"),
    "t_axis_deg": ("8638-9", "T wave axis", "deg"),
}
"""Numeric ECG measurement keys -> (LOINC code, meaning, UCUM unit)."""
QTC_METHODS: Mapping[str, str] = {"qtc_bazett_ms": "Bazett", "qtc_fridericia_ms": "Fridericia"}
"""QTc keys whose correction formula is stated as a Measurement Method concept modifier."""


def is_ecg(record: Mapping[str, Any]) -> bool:
    """True when the report reads an ECG (the study's modalities name ECG or HD)."""
    modalities = (record.get("study") or {}).get("modalities") or []
    return any(str(modality) in ECG_MODALITIES for modality in modalities)


def document_title(record: Mapping[str, Any]) -> str:
    """'Addendum', 'ECG report' or 'Imaging report'."""
    if record.get("kind") == "addendum":
        return "Addendum"
    return "ECG report" if is_ecg(record) else "Imaging report"


def document_concept(record: Mapping[str, Any]) -> hd.sr.CodedConcept:
    """LOINC 11524-6 EKG study for an ECG, else 18748-4 Diagnostic imaging study."""
    return EKG_STUDY if is_ecg(record) else IMAGING_STUDY


def signed_at(record: Mapping[str, Any]) -> datetime:
    """The record's signing time in UTC (a naive time is taken as UTC)."""
    when = datetime.fromisoformat(str(record["signed_at"]))
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _da(when: datetime) -> str:
    return when.strftime("%Y%m%d")


def _tm(when: datetime) -> str:
    return when.strftime("%H%M%S")


def _dt(when: datetime) -> str:
    return when.strftime("%Y%m%d%H%M%S+0000")


_TEXT_CONTROLS = {"\t": " ", "\n": "\n", "\f": "\f", "\r": "\r"}


def text_value(value: str) -> str:
    """Text fit for UT (PS3.5 6.1.3, 6.2): of the control characters only LF, FF and CR stay.

    A TAB becomes a space, any other control character U+FFFD; trailing spaces (and NULs),
    which are padding in UT, go. The signed record keeps the original.
    """
    cleaned = "".join(
        _TEXT_CONTROLS.get(char, "\ufffd") if ord(char) < 0x20 or ord(char) == 0x7F else char
        for char in value
    )
    return cleaned.rstrip(" \x00")


def _lo(value: Any) -> str:
    """A value fit for LO: no control characters or backslashes, at most 64 characters."""
    text = "".join(
        " " if ord(char) < 0x20 or ord(char) == 0x7F else char for char in str(value or "")
    )
    return text.replace("\\", "/").strip()[:LO_MAX]


def person_name(display_name: str) -> str:
    """A display name as a PN: whole in the family-name component unless it has carets.

    The trailing caret tells readers (and highdicom) that the one component is meant.
    """
    name = _lo(display_name).replace("=", "-")
    return name if "^" in name or not name else f"{name[: LO_MAX - 1].rstrip()}^"


def copy_patient_study(*, evidence: Dataset, target: Dataset) -> None:
    """Copy exactly PATIENT_STUDY_KEYWORDS from evidence, empty (type 2) where absent."""
    for keyword in PATIENT_STUDY_KEYWORDS:
        value = evidence.get(keyword)
        setattr(target, keyword, "" if value is None else value)


def sop_references(
    *, record: Mapping[str, Any], sop_classes: Mapping[str, str]
) -> list[tuple[str, str]]:
    """(SOP Class UID, SOP Instance UID) of each covered instance; a missing class is an error."""
    references = []
    for instance in record.get("instances") or []:
        uid = str(instance["sop_instance_uid"])
        if uid not in sop_classes:
            raise ValueError(f"The SOP Class of covered instance {uid} is not known.")
        references.append((str(sop_classes[uid]), uid))
    return references


def _signer(record: Mapping[str, Any]) -> tuple[str, str]:
    signer = record.get("signer") or {}
    return str(signer.get("display_name") or ""), str(signer.get("organisation") or "")


def _file_meta(ds: Dataset) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


def to_part10(ds: Dataset) -> bytes:
    """The dataset as a Part 10 file in Explicit VR Little Endian."""
    _file_meta(ds)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# Encapsulated PDF (PS3.3 A.45.1) ------------------------------------------------------------


def encapsulated_pdf(
    *,
    pdf: bytes,
    evidence: Dataset,
    record: Mapping[str, Any],
    series_uid: str,
    sop_instance_uid: str,
    series_number: int = 9001,
    instance_number: int = 1,
    sop_classes: Mapping[str, str] | None = None,
) -> Dataset:
    """The signed PDF as an Encapsulated PDF instance (Modality DOC) of the evidence's study.

    Source Instance Sequence lists record["instances"] when ``sop_classes`` names their SOP
    Classes (every one must then be named); without it the sequence is left out.
    """
    if not pdf.startswith(b"%PDF-"):
        raise ValueError("The document is not a PDF.")
    when = signed_at(record)
    _, organisation = _signer(record)
    ds = Dataset()
    # SOP Common
    ds.SpecificCharacterSet = CHARACTER_SET
    ds.SOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.SOPInstanceUID = sop_instance_uid
    ds.TimezoneOffsetFromUTC = "+0000"
    # Patient, General Study
    copy_patient_study(evidence=evidence, target=ds)
    # Encapsulated Document Series
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDate = _da(when)
    ds.SeriesTime = _tm(when)
    ds.SeriesDescription = _lo(f"Signed {document_title(record)}")
    # General Equipment, SC Equipment
    ds.Manufacturer = MANUFACTURER
    if organisation:
        ds.InstitutionName = _lo(organisation)
    ds.ConversionType = "WSD"
    # Encapsulated Document
    ds.InstanceNumber = instance_number
    ds.ContentDate = _da(when)
    ds.ContentTime = _tm(when)
    ds.AcquisitionDateTime = _dt(when)
    ds.BurnedInAnnotation = "YES"
    ds.ConceptNameCodeSequence = [document_concept(record)]
    ds.DocumentTitle = document_title(record)
    ds.VerificationFlag = "VERIFIED"
    if sop_classes is not None:
        sources = []
        for sop_class, uid in sop_references(record=record, sop_classes=sop_classes):
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = uid
            sources.append(item)
        if sources:
            ds.SourceInstanceSequence = Sequence(sources)
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + b"\x00" if len(pdf) % 2 else pdf
    _file_meta(ds)
    return ds


def pdf_bytes(ds: Dataset) -> bytes:
    """The PDF of an Encapsulated PDF instance, without the padding byte."""
    document = bytes(ds.EncapsulatedDocument)
    length = ds.get("EncapsulatedDocumentLength")
    return document if length is None else document[: int(length)]


# Comprehensive SR ---------------------------------------------------------------------------


def _text(name: hd.sr.CodedConcept | Any, value: str, relationship: str) -> hd.sr.TextContentItem:
    """A TEXT item holding text_value(value)."""
    return hd.sr.TextContentItem(name=name, value=text_value(value), relationship_type=relationship)


def _measurement_items(measurements: Mapping[str, Any]) -> Iterable[hd.sr.ContentItem]:
    """NUM items for the known numeric keys, TEXT "key: value" for everything else."""
    keys = [key for key in MEASUREMENT_CODES if key in measurements]
    keys += sorted(key for key in measurements if key not in MEASUREMENT_CODES)
    for key in keys:
        value = measurements[key]
        if value is None:
            continue
        known = MEASUREMENT_CODES.get(key)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if known is not None and numeric:
            code, meaning, unit = known
            item = hd.sr.NumContentItem(
                name=hd.sr.CodedConcept(value=code, scheme_designator="LN", meaning=meaning),
                value=value,
                unit=_ucum(unit),
                relationship_type="CONTAINS",
            )
            method = QTC_METHODS.get(key)
            if method is not None:
                item.ContentSequence = hd.sr.ContentSequence(
                    [_text(codes.SCT.MeasurementMethod, method, "HAS CONCEPT MOD")]
                )
            yield item
        else:
            yield _text(codes.DCM.Finding, f"{key}: {value}", "CONTAINS")


def _section(concept: Any, items: list[hd.sr.ContentItem]) -> hd.sr.ContainerContentItem:
    section = hd.sr.ContainerContentItem(name=concept, relationship_type="CONTAINS")
    section.ContentSequence = hd.sr.ContentSequence(items)
    return section


def _content(record: Mapping[str, Any]) -> hd.sr.ContainerContentItem:
    """The content tree: observer context, Findings (text, measurements), Impressions."""
    display_name, organisation = _signer(record)
    items: list[hd.sr.ContentItem] = []
    if display_name:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=person_name(display_name),
                organization_name=_lo(organisation) or None,
            ),
        )
        items.extend(cast(Iterable[hd.sr.ContentItem], observer))
    findings: list[hd.sr.ContentItem] = []
    if record.get("findings"):
        findings.append(_text(codes.DCM.Finding, str(record["findings"]), "CONTAINS"))
    findings.extend(_measurement_items(record.get("measurements") or {}))
    if findings:
        items.append(_section(codes.DCM.Findings, findings))
    if record.get("impression"):
        impression = _text(codes.DCM.Impression, str(record["impression"]), "CONTAINS")
        items.append(_section(codes.DCM.Impressions, [impression]))
    if record.get("text"):
        items.append(_text(codes.DCM.Addendum, str(record["text"]), "CONTAINS"))
    root = hd.sr.ContainerContentItem(name=document_concept(record))
    root.ContentSequence = hd.sr.ContentSequence(items)
    return root


def _evidence_items(
    *,
    evidence: Dataset,
    record: Mapping[str, Any],
    sop_classes: Mapping[str, str],
    series_uids: Mapping[str, str] | None,
) -> list[Dataset]:
    """One header per covered instance for highdicom: its UIDs, the patient and study empty.

    The patient and study values are set on the document afterwards, exactly as copied
    from ``evidence``; highdicom would otherwise second-guess them (a one-component name
    warns, an unusual Patient's Sex raises).
    """
    items = []
    for sop_class, uid in sop_references(record=record, sop_classes=sop_classes):
        item = Dataset()
        for keyword in PATIENT_STUDY_KEYWORDS:
            setattr(item, keyword, "")
        item.StudyInstanceUID = evidence.StudyInstanceUID
        item.SOPClassUID = sop_class
        item.SOPInstanceUID = uid
        item.SeriesInstanceUID = (series_uids or {}).get(uid, evidence.SeriesInstanceUID)
        items.append(item)
    if not items:
        raise ValueError("A signed report covers at least one instance of the study.")
    return items


def report_sr(
    *,
    evidence: Dataset,
    record: Mapping[str, Any],
    series_uid: str,
    sop_instance_uid: str,
    series_number: int = 9002,
    instance_number: int = 1,
    sop_classes: Mapping[str, str],
    series_uids: Mapping[str, str] | None = None,
) -> Dataset:
    """The report as a verified, complete Comprehensive SR document of the evidence's study.

    Current Requested Procedure Evidence Sequence lists record["instances"] with their
    ``sop_classes``; an instance's series is ``series_uids[uid]``, or the evidence header's
    series when it is not given there.
    """
    when = signed_at(record)
    display_name, organisation = _signer(record)
    sr = hd.sr.ComprehensiveSR(
        evidence=_evidence_items(
            evidence=evidence, record=record, sop_classes=sop_classes, series_uids=series_uids
        ),
        content=_content(record),
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=True,
        is_verified=True,
        institution_name=_lo(organisation) or None,
        verifying_observer_name=person_name(display_name or "Unknown"),
        verifying_organization=_lo(organisation) or "Unknown",
        record_evidence=False,
        specific_character_set=CHARACTER_SET,
        content_date=_da(when),
        content_time=_tm(when),
        series_date=_da(when),
        series_time=_tm(when),
        series_description=_lo(f"Structured {document_title(record)}"),
    )
    # highdicom reads the clock for these; the signing time makes the output deterministic.
    del sr.InstanceCreationDate
    del sr.InstanceCreationTime
    sr.TimezoneOffsetFromUTC = "+0000"
    sr.VerifyingObserverSequence[0].VerificationDateTime = _dt(when)
    for equipment in sr.get("ContributingEquipmentSequence") or []:
        if "ContributionDateTime" in equipment:
            del equipment.ContributionDateTime
    # The patient and study exactly as the evidence header has them (see _evidence_items).
    copy_patient_study(evidence=evidence, target=sr)
    return sr
