import dataclasses
import hashlib
import io
import struct
import tracemalloc
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicom_tools.errors import INGEST_REASONS, IngestError
from dicom_tools.ingest import InstanceInfo, inspect_part10, prepare_part10

from .part10 import (
    DEFLATED,
    IMPLICIT_LE,
    PIXEL_DATA,
    SERIES_UID,
    SOP_INSTANCE_UID,
    STUDY_UID,
    bundled,
    dataset,
    deflated_with_zeros,
    element,
    file_meta,
    part10,
    raw_deflate,
)

MZ_STUB = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\xcc" * 50

ACCEPTED = [
    "693_J2KI.dcm",
    "CT_small.dcm",
    "ExplVR_BigEnd.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "JPEG-lossy.dcm",
    "JPEG2000-embedded-sequence-delimiter.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_padded.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_gdcm_KY.dcm",
    "SC_rgb_jpeg_dcmd.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "examples_jpeg2k.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "examples_ybr_color.dcm",
    "image_dfl.dcm",
    "liver_1frame.dcm",
    "liver_expb_1frame.dcm",
    "reportsi.dcm",
    "rtdose_rle.dcm",
    "test-SR.dcm",
    "waveform_ecg.dcm",
]

REJECTED = {
    "ExplVR_BigEndNoMeta.dcm": "missing_file_meta",
    "ExplVR_LitEndNoMeta.dcm": "missing_file_meta",
    "rtstruct.dcm": "missing_file_meta",
    "no_meta.dcm": "not_dicom",
    "MR_truncated.dcm": "truncated",
    "rtplan_truncated.dcm": "truncated",
    "JPEGLSNearLossless_08.dcm": "missing_attribute",  # no Study/Series Instance UID
    "SC_rgb_jls_lossy_line.dcm": "missing_attribute",
    "UN_sequence.dcm": "missing_attribute",
    "priv_SQ.dcm": "missing_attribute",
    "meta_missing_tsyntax.dcm": "missing_attribute",
    "empty_charset_LEI.dcm": "missing_attribute",  # no MediaStorageSOPInstanceUID
    "rtplan.dcm": "meta_mismatch",
    "rtdose.dcm": "meta_mismatch",
    "badVR.dcm": "meta_mismatch",
    "SC_rgb_jpeg.dcm": "malformed",  # implicit VR under an explicit VR transfer syntax
}


def refused(source: bytes | Path, **kwargs: object) -> IngestError:
    with pytest.raises(IngestError) as caught:
        inspect_part10(source, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason in INGEST_REASONS
    return caught.value


def read_bytes(name: str) -> bytes:
    return bundled(name).read_bytes()


def save(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# Bundled files --------------------------------------------------------------


@pytest.mark.parametrize("name", ACCEPTED)
def test_bundled_file_matches_pydicom(name: str) -> None:
    path = bundled(name)
    info = inspect_part10(path)
    ref = pydicom.dcmread(path, stop_before_pixels=True)
    assert info.sop_instance_uid == ref.SOPInstanceUID
    assert info.sop_class_uid == ref.SOPClassUID
    assert info.study_uid == ref.StudyInstanceUID
    assert info.series_uid == ref.SeriesInstanceUID
    assert info.transfer_syntax_uid == ref.file_meta.TransferSyntaxUID
    assert info.patient_id == (ref.get("PatientID") or None)
    assert info.patient_name == (str(ref.get("PatientName", "")) or None)
    assert info.modality == (ref.get("Modality") or None)
    assert info.study_date == (ref.get("StudyDate") or None)
    assert info.number_of_frames == int(ref.get("NumberOfFrames") or 1)
    assert (info.rows, info.columns, info.bits_allocated) == (
        ref.get("Rows"),
        ref.get("Columns"),
        ref.get("BitsAllocated"),
    )
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.size == path.stat().st_size
    assert not info.preamble_neutralised
    assert inspect_part10(path.read_bytes()) == info


def test_bundled_files_cover_the_transfer_syntaxes() -> None:
    syntaxes = {inspect_part10(bundled(name)).transfer_syntax_uid for name in ACCEPTED}
    assert {
        "1.2.840.10008.1.2",  # implicit VR little endian
        "1.2.840.10008.1.2.1",  # explicit VR little endian
        "1.2.840.10008.1.2.2",  # explicit VR big endian
        "1.2.840.10008.1.2.1.99",  # deflated
        "1.2.840.10008.1.2.4.50",  # JPEG baseline
        "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
        "1.2.840.10008.1.2.4.91",  # JPEG 2000
        "1.2.840.10008.1.2.5",  # RLE
    } <= syntaxes


@pytest.mark.parametrize(("name", "reason"), sorted(REJECTED.items()))
def test_bundled_file_rejected(name: str, reason: str) -> None:
    assert refused(bundled(name)).reason == reason


def test_ct_small_index_attributes() -> None:
    info = inspect_part10(bundled("CT_small.dcm"))
    assert info.patient_name == "CompressedSamples^CT1"
    assert info.patient_id == "1CT1"
    assert info.modality == "CT"
    assert info.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert info.study_date == "20040119"
    assert info.series_number == 1
    assert info.instance_number == 1
    assert info.number_of_frames == 1
    # CT_small is a real dual-personality DICOM/TIFF file: its preamble is kept.
    assert info.preamble_kind == "tiff"


def test_ecg_waveform_is_accepted() -> None:
    info = inspect_part10(bundled("waveform_ecg.dcm"))
    assert info.modality == "ECG"
    assert info.sop_class_uid == "1.2.840.10008.5.1.4.1.1.9.1.1"  # 12-lead ECG


def test_multiframe_count() -> None:
    assert inspect_part10(bundled("examples_ybr_color.dcm")).number_of_frames == 30


def test_rtplan_with_consistent_meta_is_accepted() -> None:
    ds = pydicom.dcmread(bundled("rtplan.dcm"))
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    info = inspect_part10(save(ds))
    assert info.modality == "RTPLAN"
    assert info.sop_instance_uid == "1.2.777.777.77.7.7777.7777.20030903150023"


# Crafted instances ------------------------------------------------------------


def test_crafted_instance_index_attributes() -> None:
    info = inspect_part10(part10(dataset()))
    assert info == InstanceInfo(
        patient_id="P-0001",
        patient_name="Doe^Jane",
        patient_birth_date=None,
        patient_sex=None,
        study_uid=STUDY_UID,
        study_date="20240131",
        study_time=None,
        study_description=None,
        accession_number=None,
        referring_physician_name=None,
        study_id=None,
        series_uid=SERIES_UID,
        series_number=None,
        series_description=None,
        modality="CT",
        body_part=None,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        sop_instance_uid=SOP_INSTANCE_UID,
        instance_number=7,
        number_of_frames=1,
        rows=None,
        columns=None,
        bits_allocated=None,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        content_date=None,
        preamble_neutralised=False,
        preamble_kind="zero",
        sha256=info.sha256,
        size=info.size,
    )
    assert dataclasses.is_dataclass(info)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.study_uid = "1.2"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("tag", "keyword"),
    [
        (0x00080018, "SOPInstanceUID"),
        (0x00080016, "SOPClassUID"),
        (0x0020000D, "StudyInstanceUID"),
        (0x0020000E, "SeriesInstanceUID"),
    ],
)
def test_missing_required_uid(tag: int, keyword: str) -> None:
    error = refused(part10(dataset(omit=(tag,))))
    assert (error.reason, error.attribute) == ("missing_attribute", keyword)


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID"])
def test_missing_uid_in_a_real_file(keyword: str) -> None:
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    delattr(ds, keyword)
    error = refused(save(ds))
    assert (error.reason, error.attribute) == ("missing_attribute", keyword)


def test_empty_study_uid_is_missing() -> None:
    error = refused(part10(dataset(replace={0x0020000D: b""})))
    assert (error.reason, error.attribute) == ("missing_attribute", "StudyInstanceUID")


@pytest.mark.parametrize(
    ("tag", "value", "keyword"),
    [
        (0x0020000D, b"1.2.3/../../../etc", "StudyInstanceUID"),
        (0x0020000E, b"../1.2.3", "SeriesInstanceUID"),
        (0x00080016, b" 1.2.840.10008.5.1.4.1.1.2", "SOPClassUID"),
        (0x0020000D, b"1.2.3\\1.2.4", "StudyInstanceUID"),
        (0x0020000D, b"1.02.3", "StudyInstanceUID"),
    ],
)
def test_invalid_uid(tag: int, value: bytes, keyword: str) -> None:
    error = refused(part10(dataset(replace={tag: value})))
    assert (error.reason, error.attribute) == ("invalid_uid", keyword)


def test_sop_instance_uid_with_dot_dot_is_refused_even_when_meta_agrees() -> None:
    bad = "1.2.3/../4"
    data = part10(dataset(replace={0x00080018: bad.encode()}), sop_instance_uid=bad)
    assert refused(data).reason == "invalid_uid"


def test_meta_instance_uid_mismatch() -> None:
    error = refused(part10(dataset(), sop_instance_uid="1.2.3.4"))
    assert (error.reason, error.attribute) == ("meta_mismatch", "MediaStorageSOPInstanceUID")


@pytest.mark.parametrize(
    ("transfer_syntax", "reason"),
    [
        ("1.2.826.0.1.3680043.8.498.77", "unsupported_transfer_syntax"),  # private
        ("1.2.840.10008.5.1.4.1.1.2", "unsupported_transfer_syntax"),  # a SOP class
        ("1.2.840.10008.1.2.1 x", "invalid_uid"),
    ],
)
def test_transfer_syntax_checks(transfer_syntax: str, reason: str) -> None:
    assert refused(part10(dataset(), transfer_syntax=transfer_syntax)).reason == reason


def test_implicit_vr_crafted_from_pydicom() -> None:
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = UID(IMPLICIT_LE)
    out = io.BytesIO()
    ds.save_as(out, implicit_vr=True, little_endian=True, enforce_file_format=True)
    info = inspect_part10(out.getvalue())
    assert info.transfer_syntax_uid == IMPLICIT_LE
    assert info.sop_instance_uid == ds.SOPInstanceUID


def test_rows_without_pixel_data() -> None:
    body = dataset(omit=(PIXEL_DATA,), extra={0x00280010: ("US", struct.pack("<H", 512))})
    error = refused(part10(body))
    assert (error.reason, error.attribute) == ("missing_attribute", "PixelData")


def test_ecg_without_waveform_is_refused() -> None:
    ds = pydicom.dcmread(bundled("waveform_ecg.dcm"))
    del ds.WaveformSequence
    error = refused(save(ds))
    assert (error.reason, error.attribute) == ("missing_attribute", "WaveformSequence")


ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"


def test_encapsulated_pdf_requires_the_document() -> None:
    pdf_class = {0x00080016: ENCAPSULATED_PDF_STORAGE.encode()}
    without = dataset(omit=(PIXEL_DATA,), replace=pdf_class)
    error = refused(part10(without, sop_class_uid=ENCAPSULATED_PDF_STORAGE))
    assert (error.reason, error.attribute) == ("missing_attribute", "EncapsulatedDocument")
    document = {0x00420011: ("OB", b"%PDF-1.7\n%%EOF\n")}
    with_pdf = dataset(omit=(PIXEL_DATA,), replace=pdf_class, extra=document)
    info = inspect_part10(part10(with_pdf, sop_class_uid=ENCAPSULATED_PDF_STORAGE))
    assert info.sop_class_uid == ENCAPSULATED_PDF_STORAGE


def test_meta_class_uid_mismatch() -> None:
    error = refused(part10(dataset(), sop_class_uid=ENCAPSULATED_PDF_STORAGE))
    assert (error.reason, error.attribute) == ("meta_mismatch", "MediaStorageSOPClassUID")


@pytest.mark.parametrize(("value", "frames"), [(b"3", 3), (b" 12 ", 12), (b"", 1)])
def test_number_of_frames(value: bytes, frames: int) -> None:
    body = dataset(extra={0x00280008: ("IS", value)})
    assert inspect_part10(part10(body)).number_of_frames == frames


@pytest.mark.parametrize("value", [b"0", b"-2", b"many"])
def test_invalid_number_of_frames(value: bytes) -> None:
    error = refused(part10(dataset(extra={0x00280008: ("IS", value)})))
    assert (error.reason, error.attribute) == ("invalid_attribute", "NumberOfFrames")


def test_unusable_instance_number_is_not_indexed() -> None:
    assert inspect_part10(part10(dataset(replace={0x00200013: b"x1"}))).instance_number is None


def test_overlong_index_text_is_refused() -> None:
    error = refused(part10(dataset(replace={0x00100020: b"A" * 2000})))
    assert (error.reason, error.attribute) == ("invalid_attribute", "PatientID")


def test_patient_name_is_decoded_with_the_character_set() -> None:
    body = dataset(
        replace={0x00100010: "Müller^Jürgen".encode()},
        extra={0x00080005: ("CS", b"ISO_IR 192")},
    )
    assert inspect_part10(part10(body)).patient_name == "Müller^Jürgen"


def test_file_meta_inside_the_dataset_is_malformed() -> None:
    body = dataset() + element(0x00020010, "UI", b"1.2.840.10008.1.2")
    assert refused(part10(body)).reason == "malformed"


def test_repeated_transfer_syntax_in_meta_is_malformed() -> None:
    # Readers keeping the first or the last value would decode the dataset differently.
    body = element(0x00020010, "UI", b"1.2.840.10008.1.2") + dataset()
    assert refused(part10(body)).reason == "malformed"


def test_repeated_dataset_element_is_malformed() -> None:
    body = dataset() + element(0x0020000D, "UI", b"1.2.3")
    assert refused(part10(body)).reason == "malformed"


# Not DICOM, no meta, size -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"DICM",
        b"%PDF-1.7\n" + bytes(300),
        MZ_STUB + bytes(300),
        b"\x89PNG\r\n\x1a\n" + bytes(300),
        bytes(131),
        bytes(128) + b"DICX" + bytes(64),
    ],
    ids=["empty", "dicm-only", "pdf", "exe", "png", "short-zeros", "wrong-prefix"],
)
def test_not_dicom(data: bytes) -> None:
    assert refused(data).reason == "not_dicom"


@pytest.mark.parametrize(
    "data",
    [dataset(), file_meta() + dataset(), bytes(128) + b"DICM" + dataset()],
    ids=["raw-dataset", "meta-without-preamble", "dicm-without-meta"],
)
def test_missing_file_meta(data: bytes) -> None:
    assert refused(data).reason == "missing_file_meta"


def test_too_large_bytes_and_path(tmp_path: Path) -> None:
    data = read_bytes("CT_small.dcm")
    assert refused(data, max_bytes=len(data) - 1).reason == "too_large"
    path = tmp_path / "ct.dcm"
    path.write_bytes(data)
    assert refused(path, max_bytes=len(data) - 1).reason == "too_large"
    with pytest.raises(IngestError) as caught:
        prepare_part10(path, max_bytes=len(data) - 1)
    assert caught.value.reason == "too_large"
    assert inspect_part10(path, max_bytes=len(data)).size == len(data)


def test_path_str_and_bytes_agree(tmp_path: Path) -> None:
    data = read_bytes("MR_small.dcm")
    path = tmp_path / "mr.dcm"
    path.write_bytes(data)
    assert inspect_part10(path) == inspect_part10(str(path)) == inspect_part10(data)
    assert inspect_part10(bytearray(data)) == inspect_part10(memoryview(data))


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    assert refused(path).reason == "not_dicom"


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        inspect_part10(tmp_path / "absent.dcm")


# Truncation and declared lengths ----------------------------------------------


def _pixel_data_offset(data: bytes) -> int:
    """Return where the top-level Pixel Data element starts (last occurrence of its tag)."""
    little, big = data.rfind(b"\xe0\x7f\x10\x00"), data.rfind(b"\x7f\xe0\x00\x10")
    offset = max(little, big)
    assert offset > 0
    return offset


@pytest.mark.parametrize(
    ("name", "ends_with_pixel_data", "ignored_tail"),
    [
        ("CT_small.dcm", True, 0),
        ("MR_small_implicit.dcm", True, 0),
        ("MR_small_bigendian.dcm", True, 0),
        ("JPEG2000.dcm", True, 0),  # encapsulated fragments
        ("waveform_ecg.dcm", False, 0),
        # The deflate stream ends with an 8-byte gzip-style trailer that nothing reads.
        ("image_dfl.dcm", False, 8),
    ],
)
def test_truncated_at_many_offsets(
    name: str, ends_with_pixel_data: bool, ignored_tail: int
) -> None:
    data = read_bytes(name)
    end = len(data) - ignored_tail
    pixel_data = _pixel_data_offset(data) if ends_with_pixel_data else end
    step = max(1, pixel_data // 1500)
    cuts = [*range(0, pixel_data, step), *range(pixel_data + 12, end, len(data) // 64)]
    reasons: dict[str, int] = {}
    for cut in cuts:
        error = refused(data[:cut])
        reasons[error.reason] = reasons.get(error.reason, 0) + 1
        if cut < 132:
            assert error.reason == "not_dicom", cut
        elif cut > pixel_data:
            # Inside the pixel data value or its fragments.
            assert error.reason == "truncated", cut
    assert set(reasons) <= {"not_dicom", "missing_file_meta", "truncated", "missing_attribute"}
    assert reasons["truncated"] > len(cuts) // 2


def test_four_gib_declared_length_fails_fast_without_allocating() -> None:
    data = bytearray(read_bytes("CT_small.dcm"))
    offset = _pixel_data_offset(bytes(data))
    assert data[offset + 4 : offset + 8] == b"OW\x00\x00"
    data[offset + 8 : offset + 12] = struct.pack("<L", 0xFFFFFFF0)
    tracemalloc.start()
    try:
        error = refused(bytes(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.reason == "oversized_element"
    assert peak < 16 * 1024 * 1024


def test_four_gib_declared_length_before_the_uids() -> None:
    body = element(0x00080005, "CS", b"ISO_IR 100")
    body += element(0x00080008, "UN", b"", length=0xFFFFFFFE) + dataset()
    assert refused(part10(body)).reason == "oversized_element"


def test_declared_length_above_max_bytes_is_oversized() -> None:
    data = read_bytes("CT_small.dcm")
    offset = _pixel_data_offset(data)
    patched = data[: offset + 8] + struct.pack("<L", len(data) * 2) + data[offset + 12 :]
    assert refused(patched, max_bytes=len(data)).reason == "oversized_element"
    assert refused(patched).reason == "truncated"


# Deflate ----------------------------------------------------------------------


def _deflated_instance(zeros: int, *, level: int = 9) -> bytes:
    # Encapsulated Document (0042,0011) full of zeros, then the Pixel Data.
    prefix = dataset(omit=(PIXEL_DATA,)) + element(0x00420011, "OB", b"", length=zeros)
    suffix = element(PIXEL_DATA, "OB", b"\x00\x00")
    stream = deflated_with_zeros(prefix, zeros, suffix, level=level)
    return part10(stream, transfer_syntax=DEFLATED)


def test_deflated_instance_is_accepted() -> None:
    data = part10(raw_deflate(dataset()), transfer_syntax=DEFLATED)
    info = inspect_part10(data)
    assert info.transfer_syntax_uid == DEFLATED
    assert info.sop_instance_uid == SOP_INSTANCE_UID
    assert info.sha256 == hashlib.sha256(data).hexdigest()  # the deflated bytes, as stored


def test_deflate_bomb_is_refused_by_the_caller_limit() -> None:
    data = _deflated_instance(4 * 1024 * 1024)
    assert len(data) < 64 * 1024
    assert refused(data, max_inflated_bytes=1024 * 1024).reason == "inflated_too_large"
    # The same instance within a larger limit is valid, so the limit is what refused it.
    assert inspect_part10(data, max_inflated_bytes=8 * 1024 * 1024).study_uid == STUDY_UID


def test_deflate_bomb_is_refused_by_the_default_limit() -> None:
    data = _deflated_instance(300 * 1024 * 1024, level=1)
    assert len(data) < 2 * 1024 * 1024
    tracemalloc.start()
    try:
        error = refused(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.reason == "inflated_too_large"
    assert peak < 300 * 1024 * 1024


def test_max_bytes_limits_the_stored_size_not_inflated_elements() -> None:
    data = _deflated_instance(1024 * 1024)
    assert inspect_part10(data, max_bytes=len(data)).size == len(data)


# Preamble (CVE-2019-11687) ------------------------------------------------------


def test_executable_preamble_is_neutralised() -> None:
    original = read_bytes("CT_small.dcm")
    polyglot = MZ_STUB + bytes(128 - len(MZ_STUB)) + original[128:]
    expected = bytes(128) + original[128:]  # zeroed preamble, every other byte identical
    info = inspect_part10(polyglot)
    assert info.preamble_neutralised
    assert info.preamble_kind == "executable"
    assert info.sha256 == hashlib.sha256(expected).hexdigest()
    prepared = prepare_part10(polyglot)
    assert prepared.info == info
    assert prepared.data == expected
    assert hashlib.sha256(prepared.data).hexdigest() == info.sha256


def test_executable_preamble_can_be_rejected() -> None:
    original = read_bytes("CT_small.dcm")
    polyglot = b"\x7fELF" + bytes(124) + original[128:]
    error = refused(polyglot, executable_preamble="reject")
    assert error.reason == "executable_preamble"


def test_tiff_preamble_is_kept() -> None:
    original = read_bytes("CT_small.dcm")
    dual = b"II*\x00\x08\x00\x00\x00" + bytes(120) + original[128:]
    info = inspect_part10(dual, executable_preamble="reject")
    assert not info.preamble_neutralised
    assert info.preamble_kind == "tiff"
    assert info.sha256 == hashlib.sha256(dual).hexdigest()
    assert prepare_part10(dual).data == dual


def test_other_non_zero_preamble_is_neutralised() -> None:
    original = read_bytes("MR_small.dcm")
    info = inspect_part10(b"\x01" * 128 + original[128:], executable_preamble="reject")
    assert (info.preamble_neutralised, info.preamble_kind) == (True, "other")
    assert info.sha256 == hashlib.sha256(bytes(128) + original[128:]).hexdigest()


def test_prepare_from_path(tmp_path: Path) -> None:
    original = read_bytes("CT_small.dcm")
    path = tmp_path / "polyglot.dcm"
    path.write_bytes(MZ_STUB + bytes(128 - len(MZ_STUB)) + original[128:])
    prepared = prepare_part10(path)
    assert prepared.data == bytes(128) + original[128:]
    assert prepared.info == inspect_part10(path)
