"""Bulk data at a BulkDataURI path: pixel data as stored, other values little endian."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRBigEndian, SecondaryCaptureImageStorage, generate_uid

from dicom_tools.bulkdata import PIXEL_DATA_PATH, BulkDataError, bulk_data, is_bulk_data_path
from dicom_tools.frames import FrameError

from .part10 import PIXEL_DATA, bundled, dataset, part10

LIMIT = 64 * 1024 * 1024


def _read(data: bytes, path: str) -> list[bytes]:
    return bulk_data(io.BytesIO(data), path, max_inflated_bytes=LIMIT)


def test_paths() -> None:
    assert PIXEL_DATA_PATH == "7FE00010"
    assert is_bulk_data_path("54000100/0/54001010")
    assert not is_bulk_data_path("7fe00010")  # upper-case hex, as dicomjson writes it
    assert not is_bulk_data_path("54000100/54001010")
    assert not is_bulk_data_path("../7FE00010")


def test_native_and_encapsulated_pixel_data() -> None:
    ct = bundled("CT_small.dcm")
    assert _read(ct.read_bytes(), PIXEL_DATA_PATH) == [pydicom.dcmread(ct).PixelData]
    jpeg = bundled("examples_ybr_color.dcm")
    frames = list(generate_frames(pydicom.dcmread(jpeg).PixelData, number_of_frames=30))
    assert _read(jpeg.read_bytes(), PIXEL_DATA_PATH) == frames


def test_a_value_in_a_sequence() -> None:
    ecg = bundled("waveform_ecg.dcm")
    expected = pydicom.dcmread(ecg).WaveformSequence[1].WaveformData
    assert _read(ecg.read_bytes(), "54000100/1/54001010") == [expected]


def test_big_endian_words_are_sent_little_endian() -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.add_new(0x00281201, "OW", b"\x01\x02\x03\x04")  # Red Palette Color LUT Data
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    assert _read(out.getvalue(), "00281201") == [b"\x02\x01\x04\x03"]


@pytest.mark.parametrize(
    "path",
    ["7fe00010", "00100010", "00281201", "54000100/9/54001010", "00100010/0/00100010"],
)
def test_no_bulk_data(path: str) -> None:
    with pytest.raises(BulkDataError) as raised:
        _read(bundled("waveform_ecg.dcm").read_bytes(), path)
    assert raised.value.reason == "no_such_bulk_data"


def test_pixel_data_of_an_instance_without_it() -> None:
    with pytest.raises(FrameError) as raised:
        _read(part10(dataset(omit=(PIXEL_DATA,))), PIXEL_DATA_PATH)
    assert raised.value.reason == "no_pixel_data"
