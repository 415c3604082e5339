"""De-identification per the PS3.15 Annex E Basic Application Level Confidentiality Profile.

Supports the Retain UIDs and Retain Longitudinal Temporal Information with Full Dates
options. The action of each listed attribute comes from ``confidentiality.BASIC_PROFILE``
and applies at every nesting level. Without the attribute types of each IOD, a compound
action takes the form that keeps any IOD valid: ``X/Z`` empties the value, ``X/D``,
``Z/D`` and ``X/Z/D`` replace it with a dummy, and ``X/Z/U*`` keeps the sequence while
the UIDs inside it are replaced. Private attributes, curves (50xx) and overlay planes
(60xx, whose Overlay Data and Overlay Comments the profile removes) are removed.
Identifying text burned into the pixel data is not detected.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dicom_tools.confidentiality import BASIC_PROFILE, NOT_LONGITUDINAL, Action

SCHEME = "DCM"
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
RETAIN_UIDS_CODE = ("113110", "Retain UIDs Option")
RETAIN_DATES_CODE = ("113106", "Retain Longitudinal Temporal Information Full Dates Option")
BURNED_IN_NOTE = "Burned-in annotation in pixel data not checked"
PSEUDONYM_MAX_LENGTH = 64

Applied = Literal["K", "X", "Z", "D", "U"]

_TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})
_COMPOUND: dict[Action, Applied] = {
    "D": "D",
    "Z": "Z",
    "X": "X",
    "K": "K",
    "U": "U",
    "X/Z": "Z",
    "X/D": "D",
    "Z/D": "D",
    "X/Z/D": "D",
    "X/Z/U*": "U",
}
_DUMMY_TEXT = "ANONYMIZED"
_DUMMY: dict[str, Any] = {
    "AS": "000Y",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "UR": "urn:anonymized",
    **dict.fromkeys(("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"), _DUMMY_TEXT),
    **dict.fromkeys(("FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"), 0),
    **dict.fromkeys(("OB", "OD", "OF", "OL", "OV", "OW", "UN"), b"\x00\x00"),
}
_FILE_META_IDENTIFYING = tuple(
    int(tag_for_keyword(keyword) or 0)
    for keyword in (
        "SourceApplicationEntityTitle",
        "SendingApplicationEntityTitle",
        "ReceivingApplicationEntityTitle",
        "SourcePresentationAddress",
        "SendingPresentationAddress",
        "ReceivingPresentationAddress",
        "PrivateInformationCreatorUID",
        "PrivateInformation",
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The profile options of one export."""

    retain_uids: bool = False
    retain_dates: bool = False


def replacement_uid(uid: str, key: bytes) -> str:
    """The UID replacing uid under key: 2.25. and 128 bits of HMAC-SHA256(key, uid)."""
    digest = hmac.new(key, uid.encode("ascii", "replace"), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def method_codes(options: Options) -> list[tuple[str, str]]:
    """(CodeValue, CodeMeaning) of the CID 7050 methods applied with these options."""
    codes = [BASIC_PROFILE_CODE]
    if options.retain_uids:
        codes.append(RETAIN_UIDS_CODE)
    if options.retain_dates:
        codes.append(RETAIN_DATES_CODE)
    return codes


def _action(element: DataElement, options: Options) -> Applied | None:
    """What to do with one element: its table action after the options, None if unlisted."""
    listed = BASIC_PROFILE.get(element.tag)
    if listed is None:
        return None
    if options.retain_dates and element.VR in _TEMPORAL_VRS and element.tag not in NOT_LONGITUDINAL:
        return "K"
    applied = _COMPOUND[listed]
    if applied == "U" and (options.retain_uids or element.VR == "SQ"):
        return "K"  # a sequence's UIDs are replaced by their own entries
    return applied


def _is_curve_or_overlay(group: int) -> bool:
    return group & 0xFF01 in (0x5000, 0x6000)


def _clean(ds: Dataset, key: bytes, options: Options) -> None:
    """Apply the profile to every element of ds and of the sequences it holds."""
    for tag in list(ds.keys()):
        if tag.is_private or _is_curve_or_overlay(tag.group):
            del ds[tag]
            continue
        element = ds[tag]
        action = _action(element, options)
        if action == "X":
            del ds[tag]
        elif action == "Z":
            element.clear()
        elif action == "U":
            element.value = _replaced_uids(element.value, key)
        elif element.VR == "SQ":  # kept, dummy (D) or unlisted: clean the items
            for item in element.value:
                _clean(item, key, options)
        elif action == "D":
            element.value = _DUMMY.get(element.VR, _DUMMY_TEXT)


def _replaced_uids(value: Any, key: bytes) -> Any:
    if isinstance(value, MultiValue | list):
        return [replacement_uid(str(uid), key) for uid in value if uid]
    return replacement_uid(str(value), key) if value else value


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = SCHEME
    item.CodeMeaning = meaning
    return item


def deidentify(ds: Dataset, *, pseudonym: str, uid_key: bytes, options: Options) -> None:
    """De-identify ds in place, naming the patient pseudonym and recording the method used."""
    if not pseudonym.isascii() or not pseudonym.isprintable() or "\\" in pseudonym:
        raise ValueError("a pseudonym is printable ASCII without backslashes")
    if not 0 < len(pseudonym) <= PSEUDONYM_MAX_LENGTH:
        raise ValueError(f"a pseudonym has 1 to {PSEUDONYM_MAX_LENGTH} characters")
    _clean(ds, uid_key, options)
    ds.PatientName = pseudonym
    ds.PatientID = pseudonym
    ds.PatientIdentityRemoved = "YES"
    codes = method_codes(options)
    ds.DeidentificationMethod = [meaning for _, meaning in codes] + [BURNED_IN_NOTE]
    ds.DeidentificationMethodCodeSequence = Sequence([_code(*code) for code in codes])
    ds.LongitudinalTemporalInformationModified = "UNMODIFIED" if options.retain_dates else "REMOVED"
    file_meta: FileMetaDataset | None = getattr(ds, "file_meta", None)
    if file_meta is not None:
        for tag in _FILE_META_IDENTIFYING:
            if tag in file_meta:
                del file_meta[tag]
        if "SOPInstanceUID" in ds:
            file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def deidentify_file(source: BinaryIO, *, pseudonym: str, uid_key: bytes, options: Options) -> bytes:
    """Read a Part 10 instance and return it de-identified, as Part 10 with a zeroed preamble."""
    ds = dcmread(source)
    deidentify(ds, pseudonym=pseudonym, uid_key=uid_key, options=options)
    ds.preamble = bytes(128)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
