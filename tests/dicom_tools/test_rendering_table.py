"""The grayscale pipeline through a table of stored values equals it pixel by pixel, exactly.

Large integer frames go through a table of the values from their minimum to their
maximum (dicom_tools.rendering._grayscale); these cases compare it with the direct
pipeline (every pixel on its own) for every kind of LUT, window and interpretation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pydicom.dataset import Dataset

from dicom_tools.rendering import Window, _grayscale, _grayscale_values


def _attributes(**values: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def _lut_item(first: int, entries: int, bits: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    item = Dataset()
    item.LUTDescriptor = [entries, first, bits]
    item.LUTData = rng.integers(0, 2**bits, entries).tolist()  # not monotonic on purpose
    item["LUTData"].VR = "US"
    return item


def _frame(dtype: str, low: int, high: int, seed: int) -> npt.NDArray[Any]:
    rng = np.random.default_rng(seed)
    frame = rng.integers(low, high + 1, size=(96, 128)).astype(dtype)
    frame[0, 0], frame[-1, -1] = low, high
    frame[frame == (low + high) // 2] = low  # a gap: a value inside the range that is absent
    return frame


_RESCALED = {"RescaleSlope": 1.0, "RescaleIntercept": -1024.0}
CASES: dict[str, tuple[str, int, int, dict[str, Any], Window | None]] = {
    "ct linear window": ("int16", -1024, 3071, _RESCALED, Window(40, 400)),
    "ct full range": ("int16", -2000, 2000, _RESCALED, None),
    "negative slope full range": (
        "uint16", 0, 4095, {"RescaleSlope": -0.5, "RescaleIntercept": 10.0}, None,
    ),
    "fractional slope sigmoid": (
        "uint16", 0, 1023, {"RescaleSlope": 0.37, "RescaleIntercept": 0.0},
        Window(100, 80, "sigmoid"),
    ),
    "linear exact": ("uint8", 0, 255, {}, Window(128, 31, "linear_exact")),
    "width one": ("int8", -128, 127, {}, Window(0, 1)),
    "file window": ("uint16", 0, 4095, {"WindowCenter": 1000, "WindowWidth": 500}, None),
    "file sigmoid": (
        "uint16", 0, 4095,
        {"WindowCenter": 1000, "WindowWidth": 500, "VOILUTFunction": "SIGMOID"}, None,
    ),
    "unsigned no rescale full range": ("uint16", 17, 3000, {}, None),
}  # fmt: skip


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("case", CASES)
def test_table_equals_pixel_by_pixel(case: str, photometric: str) -> None:
    dtype, low, high, values, window = CASES[case]
    frame = _frame(dtype, low, high, seed=len(case))
    attributes = _attributes(**values)
    direct = _grayscale_values(frame, attributes, window, photometric, None)
    assert np.array_equal(_grayscale(frame, attributes, window, photometric), direct), case


@pytest.mark.parametrize("window", [None, Window(2000, 3000)])
def test_table_equals_pixel_by_pixel_with_modality_and_voi_lut_sequences(
    window: Window | None,
) -> None:
    frame = _frame("uint16", 0, 3000, seed=5)
    frame[frame % 16 != 0] = 0  # few values present: a LUT's extremes are likely absent
    modality = _attributes(ModalityLUTSequence=[_lut_item(100, 2800, 16, seed=1)])
    voi = _attributes(VOILUTSequence=[_lut_item(0, 4096, 8, seed=2)])
    both = _attributes(
        ModalityLUTSequence=modality.ModalityLUTSequence, VOILUTSequence=voi.VOILUTSequence
    )
    for attributes in (modality, voi, both):
        direct = _grayscale_values(frame, attributes, window, "MONOCHROME2", None)
        assert np.array_equal(_grayscale(frame, attributes, window, "MONOCHROME2"), direct)


def test_a_wide_range_frame_takes_the_direct_path_and_small_frames_too() -> None:
    wide = np.random.default_rng(3).integers(-(2**31), 2**31 - 1, (96, 128)).astype("int32")
    small = np.arange(64, dtype="uint16").reshape(8, 8)
    for frame in (wide, small):
        expected = _grayscale_values(frame, Dataset(), None, "MONOCHROME2", None)
        assert np.array_equal(_grayscale(frame, Dataset(), None, "MONOCHROME2"), expected)
