"""dicom_tools.ecg parses only the annotations it uses, and reads the ECG the whole file holds.

``open_dataset`` leaves out the Waveform Annotation Sequence items with neither a Numeric
Value nor an Unformatted Text Value (fiducial points) before pydicom parses the file. The
ECG read must equal the one read from pydicom's dataset of the whole file, in every
encoding the filter handles and in every one it leaves alone.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicom_tools.ecg import (
    Ecg,
    EcgError,
    _annotation_element,
    _element_header,
    _items,
    _without_unread,
    open_dataset,
    read_ecg,
)
from dicom_tools.elements import walk_file_meta
from tests.dicom_tools.ecg_files import encoded, waveform_ecg
from tests.dicom_tools.part10 import bundled
from tests.dicom_tools.test_ecg import HOSTILE

ANNOTATIONS_READ = 11
"""Items of waveform_ecg.dcm's 77 annotations with a value or a statement."""


def _same(fast: Ecg, whole: Ecg) -> None:
    assert (fast.sop_class_uid, fast.sampling_frequency) == (
        whole.sop_class_uid,
        whole.sampling_frequency,
    )
    assert fast.device == whole.device
    assert fast.notes == whole.notes
    assert [(lead.name, lead.derived) for lead in fast.leads] == [
        (lead.name, lead.derived) for lead in whole.leads
    ]
    for ours, theirs in zip(fast.leads, whole.leads, strict=True):
        np.testing.assert_array_equal(ours.samples_uv, theirs.samples_uv)


def _whole(data: bytes) -> Ecg:
    return read_ecg(pydicom.dcmread(io.BytesIO(data)))


def _syntax(uid: UID) -> Callable[[Dataset], bytes]:
    def change(ds: Dataset) -> bytes:
        ds.file_meta.TransferSyntaxUID = uid
        return encoded(ds)

    return change


def _defined_lengths(ds: Dataset) -> bytes:
    """Every sequence and item written with a defined length."""
    for element in ds.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = False
            for item in element.value:
                item.is_undefined_length_sequence_item = False
    return encoded(ds)


ENCODINGS: dict[str, Callable[[Dataset], bytes]] = {
    "explicit VR little endian": encoded,
    "implicit VR little endian": _syntax(ImplicitVRLittleEndian),
    "deflated (left as it is)": _syntax(DeflatedExplicitVRLittleEndian),
    "defined lengths": _defined_lengths,
}


@pytest.mark.parametrize("encoding", list(ENCODINGS), ids=list(ENCODINGS))
def test_the_same_ecg_as_from_the_whole_file(encoding: str) -> None:
    data = ENCODINGS[encoding](waveform_ecg())
    fast = read_ecg(data)
    _same(fast, _whole(data))
    assert fast.device.statements == ("RITMO SINUSALE", "ECG NORMALE")
    assert fast.device.pr_ms == 161
    kept = open_dataset(data).WaveformAnnotationSequence
    if "deflated" in encoding:
        assert _without_unread(data) is data
        assert len(kept) == 77
    else:
        assert len(kept) == ANNOTATIONS_READ
        assert all("NumericValue" in item or "UnformattedTextValue" in item for item in kept)


def test_the_bundled_file_as_stored() -> None:
    data = bundled("waveform_ecg.dcm").read_bytes()
    _same(read_ecg(data), _whole(data))
    assert len(_without_unread(data)) < len(data)


def test_a_file_without_annotations_is_left_as_it_is() -> None:
    ds = waveform_ecg()
    del ds.WaveformAnnotationSequence
    data = encoded(ds)
    assert _without_unread(data) is data


@pytest.mark.parametrize("cut", [200, 1000, 5000, 40_000, 150_000, 290_000])
def test_truncated_files_are_left_to_pydicom(cut: int) -> None:
    data = bundled("waveform_ecg.dcm").read_bytes()[:cut]
    fast, whole = _outcome(lambda: read_ecg(data)), _outcome(lambda: _whole(data))
    if isinstance(fast, Ecg) and isinstance(whole, Ecg):
        _same(fast, whole)
    else:
        assert fast == whole


def test_an_item_that_overruns_its_sequence_leaves_the_file_as_it_is() -> None:
    """The last item's length made to take in the next top-level element as its own."""
    data = bytearray(_defined_lengths(waveform_ecg()))
    meta = walk_file_meta(bytes(data), 132, max_element_length=len(data))
    found = _annotation_element(bytes(data), meta.end, False)
    assert found is not None
    _, value, end = found
    *_, (last, last_end, _) = _items(bytes(data), value, end, False)
    _, next_value, next_length, _ = _element_header(bytes(data), end, False)
    grown = last_end - last - 8 + (next_value + next_length - end)
    struct.pack_into("<L", data, last + 4, grown)
    assert _without_unread(bytes(data)) == bytes(data)


def _outcome(read: Callable[[], Ecg]) -> Ecg | str:
    """The ECG, or the reason of its refusal ("not_dicom" when pydicom itself fails)."""
    try:
        return read()
    except EcgError as refused:
        return refused.reason
    except Exception:
        return "not_dicom"


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_files_are_refused_alike(case: str) -> None:
    change, reason = HOSTILE[case]
    ds = waveform_ecg()
    change(ds)
    data = encoded(ds)
    for source in (data, pydicom.dcmread(io.BytesIO(data))):
        with pytest.raises(EcgError) as refused:
            read_ecg(source)
        assert refused.value.reason == reason
