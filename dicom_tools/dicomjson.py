"""DICOM JSON Model (PS3.18 Annex F) with bulk data replaced by BulkDataURI references.

The callback that makes a BulkDataURI receives the attribute's path: the tag as
8 upper-case hex digits at the top level, and ``SEQTAG/ITEM/TAG`` segments for
elements nested in sequences, e.g. ``7FE00010`` or ``00880200/0/7FE00010``
(Icon Image Sequence, first item, Pixel Data). Items are numbered from 0.

Pixel data (Pixel Data, Float Pixel Data, Double Float Pixel Data) always
becomes a BulkDataURI when a callback is given, whatever its size; other
binary values (VR OB, OD, OF, OL, OV, OW, UN) do when their encoded length is
more than ``bulk_threshold`` bytes. A value that is still deferred (the dataset
was read with ``defer_size``) is not loaded to emit its BulkDataURI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

from dicom_tools.elements import PIXEL_DATA_TAGS

BulkDataURI = Callable[[str], str]

_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_AVAILABLE_TRANSFER_SYNTAX_UID = "00083002"
_DEFER_BYTES = 1024


def to_dicom_json(
    dataset: Dataset,
    *,
    bulk_data_uri: BulkDataURI | None,
    bulk_threshold: int = 1024,
) -> dict[str, Any]:
    """Return ``dataset`` as a DICOM JSON object; without a callback binary data is inline."""
    return _dataset_json(dataset, "", bulk_data_uri, bulk_threshold)


def instance_metadata(source: BinaryIO, *, bulk_data_uri: BulkDataURI) -> dict[str, Any]:
    """A stored instance's metadata (PS3.18 10.4, metadata resources): DICOM JSON, BulkDataURIs.

    Available Transfer Syntax UID (0008,3002) says the syntax it is stored in; values
    past a kilobyte are not read from the file.
    """
    ds = dcmread(source, defer_size=_DEFER_BYTES)
    out = to_dicom_json(ds, bulk_data_uri=bulk_data_uri)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    out[_AVAILABLE_TRANSFER_SYNTAX_UID] = {"vr": "UI", "Value": [syntax]}
    return dict(sorted(out.items()))


def _dataset_json(
    dataset: Dataset, prefix: str, bulk_data_uri: BulkDataURI | None, bulk_threshold: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag in sorted(dataset.keys()):  # iterating a Dataset would load deferred values
        key = f"{tag:08X}"
        path = prefix + key
        raw = dataset.get_item(tag, keep_deferred=True)  # plain get_item loads deferred values
        if isinstance(raw, RawDataElement) and raw.value is None and raw.length > 0:
            deferred = _deferred_bulk(raw, path, bulk_data_uri, bulk_threshold)
            if deferred is not None:
                out[key] = deferred
                continue
        element = dataset[tag]
        if element.VR == "SQ":
            items = [
                _dataset_json(item, f"{path}/{index}/", bulk_data_uri, bulk_threshold)
                for index, item in enumerate(element.value)
            ]
            out[key] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
        elif bulk_data_uri is not None and _is_bulk(element, bulk_threshold):
            out[key] = {"vr": element.VR, "BulkDataURI": bulk_data_uri(path)}
        else:
            # Binary values that reach here are small, or inline on request: InlineBinary.
            out[key] = element.to_json_dict(None, bulk_threshold)
    return out


def _is_bulk(element: DataElement, bulk_threshold: int) -> bool:
    """Return whether a loaded element is pixel data or a binary value above the threshold."""
    if element.VR not in _BINARY_VRS or element.is_empty:
        return False
    value = element.value
    if not isinstance(value, bytes | bytearray):
        return False
    return element.tag in PIXEL_DATA_TAGS or len(value) > bulk_threshold


def _deferred_bulk(
    raw: RawDataElement, path: str, bulk_data_uri: BulkDataURI | None, bulk_threshold: int
) -> dict[str, Any] | None:
    """Return a BulkDataURI for a deferred binary value without loading it, else None."""
    if bulk_data_uri is None:
        return None
    vr = raw.VR
    if vr is None:  # implicit VR: ask the data dictionary
        try:
            vr = dictionary_VR(raw.tag)
        except KeyError:
            vr = "UN"
    if vr not in _BINARY_VRS:
        # Implicit VR ambiguous binary VRs ("OB or OW", "US or OW"...) are OW (PS3.5 A.1);
        # resolving them exactly would load the value this function exists to skip.
        if "OW" not in vr.split(" or "):
            return None
        vr = "OW"
    if raw.tag not in PIXEL_DATA_TAGS and raw.length <= bulk_threshold:
        return None
    return {"vr": vr, "BulkDataURI": bulk_data_uri(path)}
