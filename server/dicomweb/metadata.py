"""DICOM JSON metadata of a stored instance, bulk data as BulkDataURIs (blocking code)."""

from __future__ import annotations

from typing import Any, BinaryIO

from pydicom import dcmread

from dicom_tools.dicomjson import BulkDataURI, to_dicom_json
from server.dicomweb.attributes import element

_DEFER_BYTES = 1024


def instance_metadata(source: BinaryIO, bulk_data_uri: BulkDataURI) -> dict[str, Any]:
    """The dataset as DICOM JSON, with BulkDataURIs, and its transfer syntax."""
    ds = dcmread(source, defer_size=_DEFER_BYTES)
    out = to_dicom_json(ds, bulk_data_uri=bulk_data_uri)
    out["00083002"] = element("UI", str(ds.file_meta.TransferSyntaxUID))
    return dict(sorted(out.items()))
