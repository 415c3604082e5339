"""Mutation fuzzing: inspect_part10 returns InstanceInfo or raises IngestError, nothing else."""

import functools
import hashlib
import io

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicom_tools.errors import INGEST_REASONS, IngestError
from dicom_tools.ingest import InstanceInfo, inspect_part10, prepare_part10
from dicom_tools.uids import is_valid_uid

from .part10 import bundled

SEEDS = [
    "CT_small.dcm",  # explicit VR little endian, TIFF preamble
    "MR_small_implicit.dcm",  # implicit VR
    "MR_small_bigendian.dcm",  # explicit VR big endian
    "JPEG2000.dcm",  # encapsulated fragments
    "image_dfl.dcm",  # deflated
    "waveform_ecg.dcm",  # nested sequences, waveform data
    "test-SR.dcm",  # deep SR content tree
    "rtplan.dcm",  # implicit VR with sequences (meta fixed below)
]

INTERESTING_WORDS = [
    b"\xff\xff\xff\xff",  # undefined length
    b"\xf0\xff\xff\xff",  # ~4 GiB
    b"\x00\x00\x00\x80",  # 2 GiB
    b"\x00\x00\x00\x00",
    b"\xfe\xff\x00\xe0",  # item
    b"\xfe\xff\x0d\xe0",  # item delimitation
    b"\xfe\xff\xdd\xe0",  # sequence delimitation
    b"SQ\x00\x00",
    b"UN\x00\x00",
    b"DICM",
]


@functools.cache
def seed(name: str) -> bytes:
    data = bundled(name).read_bytes()
    if name == "rtplan.dcm":
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        data = out.getvalue()
    return data


@pytest.mark.parametrize("name", SEEDS)
def test_seeds_are_valid(name: str) -> None:
    # Otherwise the fuzzing below would only ever exercise the rejection paths.
    assert inspect_part10(seed(name)).sop_instance_uid


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(seed(draw(st.sampled_from(SEEDS))))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        if not data:
            break
        # Most structure sits before the pixel data: aim there three times in four.
        window = draw(st.sampled_from([len(data), min(len(data), 3000), 600, 300]))
        offset = draw(st.integers(min_value=0, max_value=max(0, min(window, len(data)) - 1)))
        kind = draw(st.sampled_from(["flip", "word", "truncate", "insert", "delete", "repeat"]))
        if kind == "flip":
            data[offset] ^= draw(st.integers(min_value=1, max_value=255))
        elif kind == "word":
            data[offset : offset + 4] = draw(st.sampled_from(INTERESTING_WORDS))
        elif kind == "truncate":
            del data[offset:]
        elif kind == "insert":
            data[offset:offset] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[offset : offset + draw(st.integers(min_value=1, max_value=16))]
        else:
            size = draw(st.integers(min_value=1, max_value=64))
            data[offset:offset] = data[offset : offset + size]
    return bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=mutated())
def test_mutated_files_are_accepted_or_refused_cleanly(data: bytes) -> None:
    outcome: InstanceInfo | IngestError
    try:
        outcome = inspect_part10(data, max_inflated_bytes=16 * 1024 * 1024)
    except IngestError as error:  # any other exception fails the test
        outcome = error
    if isinstance(outcome, IngestError):
        assert outcome.reason in INGEST_REASONS
        assert outcome.message
        return
    info = outcome
    for uid in (info.sop_instance_uid, info.sop_class_uid, info.study_uid, info.series_uid):
        assert is_valid_uid(uid)
    assert info.number_of_frames >= 1
    prepared = prepare_part10(data, max_inflated_bytes=16 * 1024 * 1024)
    assert prepared.info == info
    assert hashlib.sha256(prepared.data).hexdigest() == info.sha256
    assert prepared.data[128:] == data[128:]
