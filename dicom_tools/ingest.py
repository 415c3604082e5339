"""Validate a DICOM Part 10 stream (PS3.10 7) and extract what the archive indexes.

Order of checks: size, ``DICM`` prefix, preamble, File Meta walk, transfer
syntax, bounded inflation for deflated syntaxes, a walk of every element, item
and fragment of the dataset, then pydicom decodes only the index attributes
(pixel data is never read). Everything wrong with the input surfaces as
:class:`~dicom_tools.errors.IngestError`; an unreadable path raises ``OSError``.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Literal

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import UID

from dicom_tools.deflate import DEFAULT_MAX_INFLATED_BYTES, inflate_dataset
from dicom_tools.elements import (
    FILE_META_GROUP,
    MAX_ELEMENT_LENGTH,
    PIXEL_DATA_TAGS,
    UNDEFINED_LENGTH,
    Buffer,
    DatasetLayout,
    walk_dataset,
    walk_file_meta,
)
from dicom_tools.errors import IngestError
from dicom_tools.preamble import (
    DATASET_OFFSET,
    DICM_PREFIX,
    PREAMBLE_LENGTH,
    PreambleKind,
    classify_preamble,
    preamble_is_kept,
)
from dicom_tools.transfer_syntaxes import dataset_encoding
from dicom_tools.uids import validate_uid

__all__ = [
    "DEFAULT_MAX_INFLATED_BYTES",
    "MAX_TEXT_LENGTH",
    "ExecutablePreamblePolicy",
    "InstanceInfo",
    "PreparedInstance",
    "Source",
    "inspect_part10",
    "prepare_part10",
]

Source = bytes | bytearray | memoryview | str | os.PathLike[str]
ExecutablePreamblePolicy = Literal["neutralise", "reject"]

MAX_TEXT_LENGTH = 1024
"""Longest index attribute value accepted, in encoded bytes; longer ones are hostile."""

_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")

_DIGEST_CHUNK = 1024 * 1024
_ZERO_PREAMBLE = bytes(PREAMBLE_LENGTH)

# File Meta Information (group 0002).
_MEDIA_STORAGE_SOP_CLASS_UID = 0x00020002
_MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
_TRANSFER_SYNTAX_UID = 0x00020010

# Dataset attributes the archive indexes, by tag.
_SPECIFIC_CHARACTER_SET = 0x00080005
_SOP_CLASS_UID = 0x00080016
_SOP_INSTANCE_UID = 0x00080018
_STUDY_DATE = 0x00080020
_CONTENT_DATE = 0x00080023
_STUDY_TIME = 0x00080030
_ACCESSION_NUMBER = 0x00080050
_MODALITY = 0x00080060
_REFERRING_PHYSICIAN_NAME = 0x00080090
_STUDY_DESCRIPTION = 0x00081030
_SERIES_DESCRIPTION = 0x0008103E
_PATIENT_NAME = 0x00100010
_PATIENT_ID = 0x00100020
_PATIENT_BIRTH_DATE = 0x00100030
_PATIENT_SEX = 0x00100040
_BODY_PART_EXAMINED = 0x00180015
_STUDY_INSTANCE_UID = 0x0020000D
_SERIES_INSTANCE_UID = 0x0020000E
_STUDY_ID = 0x00200010
_SERIES_NUMBER = 0x00200011
_INSTANCE_NUMBER = 0x00200013
_NUMBER_OF_FRAMES = 0x00280008
_ROWS = 0x00280010
_COLUMNS = 0x00280011
_BITS_ALLOCATED = 0x00280100
_WAVEFORM_SEQUENCE = 0x54000100
_ENCAPSULATED_DOCUMENT = 0x00420011

_INDEX_TAGS = (
    _SPECIFIC_CHARACTER_SET,
    _SOP_CLASS_UID,
    _SOP_INSTANCE_UID,
    _STUDY_DATE,
    _CONTENT_DATE,
    _STUDY_TIME,
    _ACCESSION_NUMBER,
    _MODALITY,
    _REFERRING_PHYSICIAN_NAME,
    _STUDY_DESCRIPTION,
    _SERIES_DESCRIPTION,
    _PATIENT_NAME,
    _PATIENT_ID,
    _PATIENT_BIRTH_DATE,
    _PATIENT_SEX,
    _BODY_PART_EXAMINED,
    _STUDY_INSTANCE_UID,
    _SERIES_INSTANCE_UID,
    _STUDY_ID,
    _SERIES_NUMBER,
    _INSTANCE_NUMBER,
    _NUMBER_OF_FRAMES,
    _ROWS,
    _COLUMNS,
    _BITS_ALLOCATED,
)
_INDEX_TAG_SET = frozenset(_INDEX_TAGS)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceInfo:
    """What the archive indexes for one stored instance; text is as encoded, None if empty."""

    patient_id: str | None
    patient_name: str | None
    patient_birth_date: str | None
    patient_sex: str | None
    study_uid: str
    study_date: str | None
    study_time: str | None
    study_description: str | None
    accession_number: str | None
    referring_physician_name: str | None
    study_id: str | None
    series_uid: str
    series_number: int | None
    series_description: str | None
    modality: str | None
    body_part: str | None
    sop_class_uid: str
    sop_instance_uid: str
    instance_number: int | None
    number_of_frames: int
    rows: int | None
    columns: int | None
    bits_allocated: int | None
    transfer_syntax_uid: str
    content_date: str | None
    preamble_neutralised: bool
    preamble_kind: PreambleKind
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class PreparedInstance:
    """A validated instance: its index attributes and exactly the bytes to store."""

    info: InstanceInfo
    data: bytes


def inspect_part10(
    source: Source,
    *,
    max_bytes: int | None = None,
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
    executable_preamble: ExecutablePreamblePolicy = "neutralise",
) -> InstanceInfo:
    """Validate a Part 10 file or byte string and return its index attributes.

    A file is memory-mapped and only the pages of its element headers are touched: its
    digest is computed by reading it in chunks, so a large file never becomes resident.
    """
    with _open(source, max_bytes) as data:
        if isinstance(source, bytes | bytearray | memoryview):
            return _inspect(data, max_bytes, max_inflated_bytes, executable_preamble)
        return _inspect(
            data,
            max_bytes,
            max_inflated_bytes,
            executable_preamble,
            digest=lambda neutralised: _file_sha256(source, neutralised),
        )


def prepare_part10(
    source: Source,
    *,
    max_bytes: int | None = None,
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
    executable_preamble: ExecutablePreamblePolicy = "neutralise",
) -> PreparedInstance:
    """Validate a Part 10 stream and return its index attributes and the bytes to store."""
    data = _read_all(source, max_bytes)
    info = _inspect(data, max_bytes, max_inflated_bytes, executable_preamble)
    if info.preamble_neutralised:
        data = _ZERO_PREAMBLE + data[PREAMBLE_LENGTH:]
    return PreparedInstance(info, data)


@contextmanager
def _open(source: Source, max_bytes: int | None) -> Iterator[Buffer]:
    """Yield the whole stream: bytes as given, or a read-only memory map of a file."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_size(len(data), max_bytes)
        yield data
        return
    with open(source, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        _check_size(size, max_bytes)
        if size == 0:
            yield b""
            return
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped


def _read_all(source: Source, max_bytes: int | None) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        with open(source, "rb") as file:
            _check_size(os.fstat(file.fileno()).st_size, max_bytes)
            data = file.read() if max_bytes is None else file.read(max_bytes + 1)
    _check_size(len(data), max_bytes)
    return data


def _check_size(size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise IngestError("too_large", f"{size} bytes is more than the limit of {max_bytes}")


def _inspect(
    data: Buffer,
    max_bytes: int | None,
    max_inflated_bytes: int,
    executable_preamble: ExecutablePreamblePolicy,
    *,
    digest: Callable[[bool], str] | None = None,
) -> InstanceInfo:
    _check_prefix(data)
    kind = classify_preamble(data[:PREAMBLE_LENGTH])
    if kind == "executable" and executable_preamble == "reject":
        raise IngestError(
            "executable_preamble",
            "the preamble holds an executable header (CVE-2019-11687)",
        )
    max_element = MAX_ELEMENT_LENGTH if max_bytes is None else min(max_bytes, MAX_ELEMENT_LENGTH)

    meta_layout = walk_file_meta(data, DATASET_OFFSET, max_element_length=max_element)
    if not meta_layout.elements:
        raise IngestError(
            "missing_file_meta", "DICM prefix is not followed by File Meta Information (0002,xxxx)"
        )
    _check_unique(meta_layout, "File Meta Information")
    meta = _raw_dataset(data, meta_layout, None, implicit_vr=False, little_endian=True)
    transfer_syntax_uid = _required_uid(meta, _TRANSFER_SYNTAX_UID, "TransferSyntaxUID")
    media_instance_uid = _required_uid(
        meta, _MEDIA_STORAGE_SOP_INSTANCE_UID, "MediaStorageSOPInstanceUID"
    )
    media_class_uid = _uid(meta, _MEDIA_STORAGE_SOP_CLASS_UID, "MediaStorageSOPClassUID")
    encoding = dataset_encoding(transfer_syntax_uid)

    body: Buffer = data
    start, end = meta_layout.end, len(data)
    if encoding.deflated:
        body = inflate_dataset(data, start, max_inflated_bytes=max_inflated_bytes)
        start, end = 0, len(body)
        # max_bytes bounds the stored (deflated) size; inflated elements have their own cap.
        max_element = min(MAX_ELEMENT_LENGTH, max_inflated_bytes)
    layout = walk_dataset(
        body,
        start,
        end,
        implicit_vr=encoding.implicit_vr,
        little_endian=encoding.little_endian,
        max_element_length=max_element,
    )
    _check_top_level(layout)
    ds = _raw_dataset(
        body,
        layout,
        _INDEX_TAG_SET,
        implicit_vr=encoding.implicit_vr,
        little_endian=encoding.little_endian,
    )

    sop_instance_uid = _required_uid(ds, _SOP_INSTANCE_UID, "SOPInstanceUID")
    sop_class_uid = _required_uid(ds, _SOP_CLASS_UID, "SOPClassUID")
    if media_instance_uid != sop_instance_uid:
        raise IngestError(
            "meta_mismatch",
            f"MediaStorageSOPInstanceUID {media_instance_uid} differs from "
            f"SOPInstanceUID {sop_instance_uid}",
            attribute="MediaStorageSOPInstanceUID",
        )
    if media_class_uid is not None and media_class_uid != sop_class_uid:
        raise IngestError(
            "meta_mismatch",
            f"MediaStorageSOPClassUID {media_class_uid} differs from SOPClassUID {sop_class_uid}",
            attribute="MediaStorageSOPClassUID",
        )
    study_uid = _required_uid(ds, _STUDY_INSTANCE_UID, "StudyInstanceUID")
    series_uid = _required_uid(ds, _SERIES_INSTANCE_UID, "SeriesInstanceUID")
    number_of_frames = _number_of_frames(ds)
    _check_required_content(layout, sop_class_uid)
    neutralised = not preamble_is_kept(kind)
    return InstanceInfo(
        patient_id=_text(ds, _PATIENT_ID, "PatientID"),
        patient_name=_text(ds, _PATIENT_NAME, "PatientName"),
        patient_birth_date=_ascii_text(ds, _PATIENT_BIRTH_DATE, "PatientBirthDate"),
        patient_sex=_ascii_text(ds, _PATIENT_SEX, "PatientSex"),
        study_uid=study_uid,
        study_date=_ascii_text(ds, _STUDY_DATE, "StudyDate"),
        study_time=_ascii_text(ds, _STUDY_TIME, "StudyTime"),
        study_description=_text(ds, _STUDY_DESCRIPTION, "StudyDescription"),
        accession_number=_text(ds, _ACCESSION_NUMBER, "AccessionNumber"),
        referring_physician_name=_text(ds, _REFERRING_PHYSICIAN_NAME, "ReferringPhysicianName"),
        study_id=_text(ds, _STUDY_ID, "StudyID"),
        series_uid=series_uid,
        series_number=_optional_integer(ds, _SERIES_NUMBER, "SeriesNumber"),
        series_description=_text(ds, _SERIES_DESCRIPTION, "SeriesDescription"),
        modality=_ascii_text(ds, _MODALITY, "Modality"),
        body_part=_ascii_text(ds, _BODY_PART_EXAMINED, "BodyPartExamined"),
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        instance_number=_optional_integer(ds, _INSTANCE_NUMBER, "InstanceNumber"),
        number_of_frames=number_of_frames,
        rows=_unsigned_short(ds, _ROWS),
        columns=_unsigned_short(ds, _COLUMNS),
        bits_allocated=_unsigned_short(ds, _BITS_ALLOCATED),
        transfer_syntax_uid=transfer_syntax_uid,
        content_date=_ascii_text(ds, _CONTENT_DATE, "ContentDate"),
        preamble_neutralised=neutralised,
        preamble_kind=kind,
        sha256=digest(neutralised) if digest is not None else _sha256(data, neutralised),
        size=len(data),
    )


def _check_prefix(data: Buffer) -> None:
    if len(data) >= DATASET_OFFSET and data[PREAMBLE_LENGTH:DATASET_OFFSET] == DICM_PREFIX:
        return
    if _looks_like_raw_dataset(data):
        raise IngestError(
            "missing_file_meta",
            "a raw dataset without the Part 10 preamble, DICM prefix and File Meta Information",
        )
    raise IngestError("not_dicom", "no DICM prefix at offset 128; not a DICOM Part 10 file")


def _looks_like_raw_dataset(data: Buffer) -> bool:
    """Return whether ``data`` starts like a dataset or File Meta written without a preamble."""
    if len(data) < 8:
        return False
    head = data[:6]
    explicit_vr = head[4:6].isalpha() and head[4:6].isupper()
    if head[:2] in (b"\x02\x00", b"\x08\x00") and explicit_vr:
        return True  # explicit VR little endian
    if head[:2] in (b"\x00\x02", b"\x00\x08") and explicit_vr:
        return True  # explicit VR big endian
    # Implicit VR little endian: group 0008, then a 4-byte length below 64 KiB.
    return head[:2] == b"\x08\x00" and data[6:8] == b"\x00\x00"


def _check_unique(layout: DatasetLayout, what: str) -> None:
    """Refuse repeated tags: readers that keep the first and the last would disagree."""
    tags = [element.tag for element in layout.elements]
    if len(set(tags)) != len(tags):
        repeated = sorted({tag for tag in tags if tags.count(tag) > 1})
        raise IngestError(
            "malformed",
            f"{what} repeats " + ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in repeated),
        )


def _check_top_level(layout: DatasetLayout) -> None:
    _check_unique(layout, "the dataset")
    tags = {element.tag for element in layout.elements}
    if any(element.tag >> 16 == FILE_META_GROUP for element in layout.elements):
        raise IngestError("malformed", "File Meta elements (0002,xxxx) inside the dataset")
    if _ROWS in tags and not tags & PIXEL_DATA_TAGS:
        raise IngestError(
            "missing_attribute",
            "Rows is present but Pixel Data is missing (the file may be truncated)",
            attribute="PixelData",
        )


def _check_required_content(layout: DatasetLayout, sop_class_uid: str) -> None:
    """Refuse an instance without the payload its SOP class exists for (often: truncated)."""
    name = UID(sop_class_uid).name
    if "Image Storage" in name:
        required, keyword = PIXEL_DATA_TAGS, "PixelData"
    elif "Waveform Storage" in name:
        required, keyword = frozenset({_WAVEFORM_SEQUENCE}), "WaveformSequence"
    elif name.startswith("Encapsulated") and name.endswith("Storage"):
        required, keyword = frozenset({_ENCAPSULATED_DOCUMENT}), "EncapsulatedDocument"
    else:
        return
    if not any(element.tag in required for element in layout.elements):
        raise IngestError(
            "missing_attribute",
            f"a {name} instance without {keyword} (the file may be truncated)",
            attribute=keyword,
        )


def _raw_dataset(
    data: Buffer,
    layout: DatasetLayout,
    tags: frozenset[int] | None,
    *,
    implicit_vr: bool,
    little_endian: bool,
) -> Dataset:
    """A pydicom Dataset of the walked top-level elements (those in ``tags``), values undecoded.

    The walk has already located and bounds-checked every value, so pydicom is handed raw
    elements and decodes a value only when it is asked for. A sequence or a delimited value
    cannot be an index attribute and is kept out.
    """
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    for element in layout.elements:
        if tags is not None and element.tag not in tags:
            continue
        if element.vr == "SQ" or element.length == UNDEFINED_LENGTH:
            raise IngestError(
                "invalid_attribute",
                f"{_keyword(element.tag)} is not a text value",
                attribute=_keyword(element.tag),
            )
        start = element.value_offset
        tag = BaseTag(element.tag)
        elements[tag] = RawDataElement(
            tag,
            element.vr,
            element.length,
            bytes(data[start : start + element.length]),
            start,
            implicit_vr,
            little_endian,
        )
    return Dataset(elements)


def _keyword(tag: int) -> str:
    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _encoded(ds: Dataset, tag: int, keyword: str) -> bytes | None:
    """Return the value bytes of ``tag`` as encoded, or None when absent."""
    element = ds.get_item(tag, keep_deferred=True)
    if element is None:
        return None
    value = element.value
    if value is None or value == b"":  # pydicom gives None for some empty raw values
        return None
    if not isinstance(value, bytes):  # e.g. an undefined-length value read as a sequence
        raise IngestError("invalid_attribute", f"{keyword} is not a text value", attribute=keyword)
    if len(value) > MAX_TEXT_LENGTH:
        raise IngestError(
            "invalid_attribute",
            f"{keyword} is {len(value)} bytes long (limit {MAX_TEXT_LENGTH})",
            attribute=keyword,
        )
    return value


def _ascii_text(ds: Dataset, tag: int, keyword: str) -> str | None:
    """Return a default-repertoire value (CS, DA, TM, IS) as encoded, without pydicom parsing."""
    encoded = _encoded(ds, tag, keyword)
    if encoded is None:
        return None
    return encoded.decode("latin-1").strip(" \x00") or None


def _text(ds: Dataset, tag: int, keyword: str) -> str | None:
    """Return a PN, LO or SH value decoded with the dataset's Specific Character Set."""
    if _encoded(ds, tag, keyword) is None:
        return None
    try:
        value = ds[tag].value
    except Exception as exc:  # pydicom raises many types for undecodable values
        raise IngestError(
            "invalid_attribute", f"{keyword} cannot be decoded: {exc}", attribute=keyword
        ) from exc
    if value is None:
        return None
    values = value if isinstance(value, MultiValue) else [value]
    return "\\".join(str(item) for item in values).strip(" \x00") or None


def _uid(ds: Dataset, tag: int, keyword: str) -> str | None:
    """Return a UID checked as encoded (pydicom's UID() would strip leading spaces first)."""
    # PS3.5 6.2: UI values are padded with one trailing NUL; trailing spaces are common too.
    encoded = _encoded(ds, tag, keyword)
    value = None if encoded is None else encoded.decode("latin-1").rstrip("\x00 ")
    return validate_uid(value, attribute=keyword) if value else None


def _required_uid(ds: Dataset, tag: int, keyword: str) -> str:
    value = _uid(ds, tag, keyword)
    if value is None:
        raise IngestError("missing_attribute", f"{keyword} is missing or empty", attribute=keyword)
    return value


def _optional_integer(ds: Dataset, tag: int, keyword: str) -> int | None:
    """Return an IS value as int; None when absent, empty or unusable (index only)."""
    text = _ascii_text(ds, tag, keyword)
    if text is None or not _INTEGER.fullmatch(text):
        return None
    return int(text)


def _unsigned_short(ds: Dataset, tag: int) -> int | None:
    """Return a US value (Rows, Columns, Bits Allocated); None when absent or not 2 bytes."""
    element = ds.get_item(tag, keep_deferred=True)
    value = None if element is None else element.value
    if not isinstance(value, bytes) or len(value) != 2 or not isinstance(element, RawDataElement):
        return None
    return int.from_bytes(value, "little" if element.is_little_endian else "big")


def _number_of_frames(ds: Dataset) -> int:
    text = _ascii_text(ds, _NUMBER_OF_FRAMES, "NumberOfFrames")
    if text is None:
        return 1
    if not _INTEGER.fullmatch(text) or int(text) < 1:
        raise IngestError(
            "invalid_attribute",
            f"NumberOfFrames {text[:20]!r} is not a positive integer",
            attribute="NumberOfFrames",
        )
    return int(text)


def _file_sha256(path: str | os.PathLike[str], neutralised: bool) -> str:
    """The SHA-256 of a file as stored (preamble zeroed when neutralised), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        preamble = file.read(PREAMBLE_LENGTH)
        digest.update(_ZERO_PREAMBLE if neutralised else preamble)
        while chunk := file.read(_DIGEST_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(data: Buffer, neutralised: bool) -> str:
    """Return the SHA-256 of the bytes as stored: preamble zeroed when neutralised."""
    digest = hashlib.sha256(_ZERO_PREAMBLE if neutralised else data[:PREAMBLE_LENGTH])
    with memoryview(data) as view, view[PREAMBLE_LENGTH:] as rest:
        digest.update(rest)
    return digest.hexdigest()


DATA_SET_WINDOW = 1024 * 1024
"""Bytes read to find where a stored file's File Meta Information ends."""


def data_set_sha256(stream: BinaryIO) -> str | None:
    """SHA-256 of a Part 10 file's data set: everything after its File Meta Information.

    Two files of one instance written by different applications differ in group 0002
    (implementation, source AE title) but not here. None when the meta cannot be read.
    """
    head = stream.read(DATA_SET_WINDOW)
    try:
        _check_prefix(head)
        layout = walk_file_meta(head, DATASET_OFFSET, max_element_length=len(head))
    except IngestError:
        return None
    digest = hashlib.sha256(memoryview(head)[layout.end :])
    while chunk := stream.read(_DIGEST_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()
