"""De-identification: the Basic Profile table, its options, sequences, UIDs and Part 10 output."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from dicom_tools.confidentiality import BASIC_PROFILE
from dicom_tools.deidentify import Options, deidentify, deidentify_file, replacement_uid
from dicom_tools.uids import is_valid_uid

from .part10 import bundled

KEY = b"k" * 32
PSEUDONYM = "ANON-0001"
IDENTIFYING = [
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "ContentDate",
    "ContentTime",
    "InstanceCreationDate",
    "DeviceSerialNumber",
    "StationName",
    "StudyID",
    "StudyDescription",
    "SeriesDescription",
    "RequestAttributesSequence",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
    "ReferencedSOPInstanceUID",
]
DEFAULT = Options()
UIDS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"]


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return tag


def _read(name: str) -> FileDataset:
    return pydicom.dcmread(bundled(name))


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _rich(sop_instance_uid: str = "1.2.3.4.100") -> FileDataset:
    """CT_small with identifying sequences, nested private data, overlays and curves added."""
    ds = _read("CT_small.dcm")
    ds.SOPInstanceUID = sop_instance_uid
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    ds.SeriesDescription = "Zebedee series"
    ds.PerformingPhysicianName = "Doctor^Quentin"
    ds.OperatorsName = "Operator^Olga"
    ds.InstitutionAddress = "1 Secret Lane"
    ds.DeviceSerialNumber = "SN-778899"
    ds.OtherPatientIDs = "OTHER-42"
    ds.RequestAttributesSequence = Sequence([_item(RequestedProcedureID="RP-99")])
    nested = _item(ReferencedSOPClassUID="1.2.840.10008.5.1.4.1.1.2")
    nested.ReferencedSOPInstanceUID = "1.2.3.4.200"
    nested.add_new(0x00291010, "LO", "nested private")
    ds.ReferencedImageSequence = Sequence([nested])
    ds.ContentSequence = Sequence(
        [_item(ValueType="PNAME", PersonName="Observer^Oscar", Date="20200101")]
    )
    ds.add_new(0x60000010, "US", 2)
    ds.add_new(0x60003000, "OW", b"\x01\x02")
    ds.add_new(0x60004000, "LT", "overlay comment")
    ds.add_new(0x50000005, "US", 1)
    return ds


def _roundtrip(ds: FileDataset, options: Options = DEFAULT, key: bytes = KEY) -> FileDataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    out = deidentify_file(buffer, pseudonym=PSEUDONYM, uid_key=key, options=options)
    return pydicom.dcmread(io.BytesIO(out))


def _codes(ds: Dataset) -> list[tuple[str, str]]:
    return [
        (item.CodeValue, item.CodingSchemeDesignator)
        for item in ds.DeidentificationMethodCodeSequence
    ]


def test_the_table_is_well_formed_and_covers_the_usual_identifiers() -> None:
    assert 0 not in BASIC_PROFILE
    assert len(BASIC_PROFILE) >= 150
    for keyword in IDENTIFYING:
        assert _tag(keyword) in BASIC_PROFILE, keyword
    for tag, action in BASIC_PROFILE.items():
        assert (action == "U") == (dictionary_VR(tag) == "UI"), keyword_for_tag(tag)
    assert BASIC_PROFILE[_tag("PatientSex")] == "Z"
    assert BASIC_PROFILE[_tag("StudyDescription")] == "X"
    assert BASIC_PROFILE[_tag("ReferencedImageSequence")] == "X/Z/U*"


def test_identifying_attributes_are_removed_emptied_or_replaced() -> None:
    original = _rich()
    ds = _roundtrip(_rich())
    assert ds.PatientName == PSEUDONYM
    assert ds.PatientID == PSEUDONYM
    for keyword in ["PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate"]:
        assert ds[keyword].is_empty, keyword
    assert ds.ReferringPhysicianName == ""
    for keyword in [
        "PatientAge",
        "PatientWeight",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "AdditionalPatientHistory",
        "StudyDescription",
        "SeriesDescription",
        "PerformingPhysicianName",
        "InstitutionAddress",
        "RequestAttributesSequence",
        "ImageComments",
        "TimezoneOffsetFromUTC",
    ]:
        assert keyword not in ds, keyword
    for keyword in ["InstitutionName", "StationName", "OperatorsName", "DeviceSerialNumber"]:
        assert ds[keyword].value == "ANONYMIZED", keyword
    assert ds.ContentDate == "19000101"
    assert ds.AcquisitionDate == ""
    for keyword in UIDS:
        assert ds[keyword].value != original[keyword].value, keyword
        assert ds[keyword].value.startswith("2.25.")
        assert is_valid_uid(ds[keyword].value)
    assert ds.SOPClassUID == original.SOPClassUID
    assert ds.Modality == original.Modality


def test_no_identifying_bytes_survive() -> None:
    buffer = io.BytesIO()
    _rich().save_as(buffer, enforce_file_format=True)
    raw = buffer.getvalue()
    buffer.seek(0)
    out = deidentify_file(buffer, pseudonym=PSEUDONYM, uid_key=KEY, options=DEFAULT)
    for secret in [
        b"CompressedSamples",
        b"Zebedee",
        b"Quentin",
        b"Olga",
        b"Secret Lane",
        b"SN-778899",
        b"OTHER-42",
        b"RP-99",
        b"Oscar",
        b"nested private",
        b"overlay comment",
        b"CLUNIE1",
        b"1.2.3.4.100",
        b"1.2.3.4.200",
    ]:
        assert secret in raw, secret
        assert secret not in out, secret


def test_private_tags_overlays_and_curves_are_removed_at_every_level() -> None:
    ds = _roundtrip(_rich())
    assert not [e.tag for e in ds.iterall() if e.tag.is_private]
    assert not [e.tag for e in ds if e.tag.group in (0x5000, 0x6000)]
    assert "SourceApplicationEntityTitle" not in ds.file_meta


def test_sequences_are_recursed() -> None:
    ds = _roundtrip(_rich())
    (reference,) = ds.ReferencedImageSequence
    assert reference.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert reference.ReferencedSOPInstanceUID == replacement_uid("1.2.3.4.200", KEY)
    assert len(reference) == 2
    (content,) = ds.ContentSequence
    assert content.ValueType == "PNAME"
    assert content.PersonName == "ANONYMIZED"
    assert content.Date == "19000101"


def test_uids_are_replaced_consistently_within_an_export() -> None:
    first, second = _roundtrip(_rich("1.2.3.4.100")), _roundtrip(_rich("1.2.3.4.200"))
    assert first.StudyInstanceUID == second.StudyInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    assert first.FrameOfReferenceUID == second.FrameOfReferenceUID
    assert first.SOPInstanceUID != second.SOPInstanceUID
    # The first instance refers to the second, by its new UID.
    assert first.ReferencedImageSequence[0].ReferencedSOPInstanceUID == second.SOPInstanceUID
    for ds in (first, second):
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    other_export = _roundtrip(_rich("1.2.3.4.100"), key=b"another key")
    assert other_export.StudyInstanceUID != first.StudyInstanceUID
    assert replacement_uid("1.2.3", KEY) == replacement_uid("1.2.3", KEY)
    assert len(replacement_uid("9" * 64, KEY)) <= 64


def test_the_method_is_recorded() -> None:
    ds = _roundtrip(_rich())
    assert ds.PatientIdentityRemoved == "YES"
    assert _codes(ds) == [("113100", "DCM")]
    assert ds.DeidentificationMethodCodeSequence[0].CodeMeaning == (
        "Basic Application Confidentiality Profile"
    )
    methods = list(ds.DeidentificationMethod)
    assert methods[0] == "Basic Application Confidentiality Profile"
    assert any("Burned-in annotation" in m for m in methods)
    assert all(len(m) <= 64 for m in methods)
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"


def test_retain_uids_keeps_every_uid() -> None:
    original = _rich()
    ds = _roundtrip(_rich(), Options(retain_uids=True))
    for keyword in UIDS:
        assert ds[keyword].value == original[keyword].value, keyword
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2.3.4.200"
    assert ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4.100"
    assert _codes(ds) == [("113100", "DCM"), ("113110", "DCM")]
    assert ds.PatientName == PSEUDONYM
    assert ds.StudyDate == ""


def test_retain_dates_keeps_dates_and_times_but_not_the_birth_date() -> None:
    original = _rich()
    ds = _roundtrip(_rich(), Options(retain_dates=True))
    for keyword in [
        "StudyDate",
        "StudyTime",
        "SeriesDate",
        "SeriesTime",
        "AcquisitionDate",
        "AcquisitionTime",
        "ContentDate",
        "ContentTime",
        "InstanceCreationDate",
    ]:
        assert ds[keyword].value == original[keyword].value, keyword
    assert ds.ContentSequence[0].Date == "20200101"
    assert ds.PatientBirthDate == ""
    assert ds.StudyInstanceUID != original.StudyInstanceUID
    assert _codes(ds) == [("113100", "DCM"), ("113106", "DCM")]
    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"
    both = _roundtrip(_rich(), Options(retain_uids=True, retain_dates=True))
    assert _codes(both) == [("113100", "DCM"), ("113110", "DCM"), ("113106", "DCM")]


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm", "JPEG2000.dcm", "image_dfl.dcm"]
)
def test_bundled_files_reread_with_their_pixels_and_waveforms_intact(name: str) -> None:
    path = bundled(name)
    original = pydicom.dcmread(path)
    with path.open("rb") as source:
        out = deidentify_file(source, pseudonym=PSEUDONYM, uid_key=KEY, options=DEFAULT)
    assert out[:128] == bytes(128)
    assert out[128:132] == b"DICM"
    ds = pydicom.dcmread(io.BytesIO(out))
    assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.PatientName == PSEUDONYM
    assert ds.PatientIdentityRemoved == "YES"
    assert not [e.tag for e in ds.iterall() if e.tag.is_private]
    for keyword in ["PixelData", "WaveformSequence"]:
        if keyword in original:
            assert ds[keyword].value == original[keyword].value, keyword
    if "PixelData" in original and not original.file_meta.TransferSyntaxUID.is_compressed:
        assert (ds.pixel_array == original.pixel_array).all()


def test_the_ecg_loses_its_visit_and_physician_details() -> None:
    original = _read("waveform_ecg.dcm")
    with bundled("waveform_ecg.dcm").open("rb") as source:
        ds = pydicom.dcmread(
            io.BytesIO(deidentify_file(source, pseudonym=PSEUDONYM, uid_key=KEY, options=DEFAULT))
        )
    for keyword in [
        "PatientAddress",
        "NameOfPhysiciansReadingStudy",
        "RequestingPhysician",
        "AdmissionID",
        "CurrentPatientLocation",
        "VisitComments",
        "ReasonForStudy",
    ]:
        assert keyword in original, keyword
        assert keyword not in ds, keyword
    assert ds.AcquisitionDateTime == "19000101000000"


@pytest.mark.parametrize("pseudonym", ["", "a\\b", "x" * 65, "tab\there", "Zoë"])
def test_a_bad_pseudonym_is_refused(pseudonym: str) -> None:
    with pytest.raises(ValueError, match="pseudonym"):
        deidentify(Dataset(), pseudonym=pseudonym, uid_key=KEY, options=DEFAULT)


def test_a_dataset_without_file_meta_is_de_identified_in_place() -> None:
    ds = _item(PatientName="Doe^Jane", StudyInstanceUID="1.2.3", StudyDescription="Knee")
    deidentify(ds, pseudonym=PSEUDONYM, uid_key=KEY, options=DEFAULT)
    assert ds.PatientName == PSEUDONYM
    assert ds.StudyInstanceUID == replacement_uid("1.2.3", KEY)
    assert "StudyDescription" not in ds
    assert ds.PatientIdentityRemoved == "YES"
