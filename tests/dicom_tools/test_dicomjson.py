import base64
import json

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicom_tools.dicomjson import instance_metadata, to_dicom_json

from .part10 import bundled


def uri(path: str) -> str:
    return f"https://archive.example/bulk/{path}"


@pytest.fixture
def ct() -> Dataset:
    return pydicom.dcmread(bundled("CT_small.dcm"))


def test_ct_small_pixel_data_becomes_a_bulk_data_uri(ct: Dataset) -> None:
    out = to_dicom_json(ct, bulk_data_uri=uri)
    assert out["7FE00010"] == {"vr": "OW", "BulkDataURI": uri("7FE00010")}
    assert "InlineBinary" not in json.dumps(out["7FE00010"])


def test_ct_small_person_name_and_strings(ct: Dataset) -> None:
    out = to_dicom_json(ct, bulk_data_uri=uri)
    assert out["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "CompressedSamples^CT1"}]}
    assert out["00080060"] == {"vr": "CS", "Value": ["CT"]}
    assert out["0020000D"]["vr"] == "UI"
    assert out["00280010"] == {"vr": "US", "Value": [128]}
    json.dumps(out)  # serialisable as is


def test_non_bulk_elements_match_pydicom(ct: Dataset) -> None:
    ours = to_dicom_json(ct, bulk_data_uri=uri, bulk_threshold=1024)
    reference = ct.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=None)
    assert ours.keys() == reference.keys()
    differing = {key for key in ours if ours[key] != reference[key]}
    # Only values larger than the threshold (and the pixel data) are replaced by references.
    assert differing == {key for key, value in ours.items() if "BulkDataURI" in value}
    assert differing >= {"7FE00010"}


def test_small_binary_values_stay_inline(ct: Dataset) -> None:
    out = to_dicom_json(ct, bulk_data_uri=uri, bulk_threshold=1024)
    inline = {key for key, value in out.items() if "InlineBinary" in value}
    assert inline
    for key in inline:
        assert len(base64.b64decode(out[key]["InlineBinary"])) <= 1024
    everything = to_dicom_json(ct, bulk_data_uri=uri, bulk_threshold=0)
    assert not any("InlineBinary" in value for value in everything.values())


def test_without_callback_everything_is_inline(ct: Dataset) -> None:
    out = to_dicom_json(ct, bulk_data_uri=None)
    assert base64.b64decode(out["7FE00010"]["InlineBinary"]) == ct.PixelData
    assert "BulkDataURI" not in json.dumps(out)


def test_deferred_pixel_data_is_not_loaded() -> None:
    ds = pydicom.dcmread(bundled("MR_small_implicit.dcm"), defer_size=1024)
    assert ds.get_item(0x7FE00010, keep_deferred=True).value is None
    out = to_dicom_json(ds, bulk_data_uri=uri)
    assert out["7FE00010"] == {"vr": "OW", "BulkDataURI": uri("7FE00010")}
    assert ds.get_item(0x7FE00010, keep_deferred=True).value is None


def test_nested_bulk_data_paths() -> None:
    ds = pydicom.dcmread(bundled("waveform_ecg.dcm"))
    out = to_dicom_json(ds, bulk_data_uri=uri)
    groups = out["54000100"]["Value"]
    assert len(groups) == 2
    for index, group in enumerate(groups):
        assert group["54001010"] == {
            "vr": "OW",
            "BulkDataURI": uri(f"54000100/{index}/54001010"),
        }
    assert groups[0]["003A0020"] == {"vr": "SH", "Value": ["RHYTHM"]}


def test_icon_pixel_data_is_bulk_whatever_its_size() -> None:
    icon = Dataset()
    icon.Rows = 1
    icon.Columns = 1
    icon.PixelData = b"\x00\x01"
    icon["PixelData"].VR = "OB"
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.IconImageSequence = Sequence([icon])
    ds.EncapsulatedDocument = b"%PDF" * 10
    out = to_dicom_json(ds, bulk_data_uri=uri)
    assert out["00880200"]["Value"][0]["7FE00010"] == {
        "vr": "OB",
        "BulkDataURI": uri("00880200/0/7FE00010"),
    }
    assert out["00420011"] == {
        "vr": "OB",
        "InlineBinary": base64.b64encode(b"%PDF" * 10).decode(),
    }


def test_empty_sequence_and_empty_values() -> None:
    ds = Dataset()
    ds.PatientName = ""
    ds.ReferencedSeriesSequence = Sequence()
    ds.PixelData = b""
    ds["PixelData"].VR = "OB"
    out = to_dicom_json(ds, bulk_data_uri=uri)
    assert out == {
        "00081115": {"vr": "SQ"},
        "00100010": {"vr": "PN"},
        "7FE00010": {"vr": "OB"},
    }


def test_instance_metadata_adds_the_stored_transfer_syntax() -> None:
    path = bundled("MR_small_bigendian.dcm")
    with path.open("rb") as source:
        out = instance_metadata(source, bulk_data_uri=uri)
    assert out["00083002"] == {"vr": "UI", "Value": ["1.2.840.10008.1.2.2"]}
    assert out["7FE00010"] == {"vr": "OW", "BulkDataURI": uri("7FE00010")}
    assert list(out) == sorted(out)
