"""The SVG's vectorised number formatting writes every coordinate as the scalar formatter does."""

from __future__ import annotations

import numpy as np

from dicom_tools.ecg_svg import _decimal, _numbers


def test_vectorised_numbers_equal_the_scalar_formatter() -> None:
    edges = [0, 1, -1, 5, 10, 100, 999, 1000, 1001, -999, -1000, -1001, 1500, -500, 123_450]
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            np.array(edges, dtype=np.int64),
            rng.integers(-300_000, 300_000, 20_000),
            rng.integers(-3, 3, 50),  # repeated values, as a flat lead has
        ]
    ).astype(np.int64)
    assert _numbers(values).tolist() == [_decimal(v) for v in values.tolist()]
    assert _numbers(np.array([-500, 0, 2500, 12_340], dtype=np.int64)).tolist() == [
        "-0.5",
        "0",
        "2.5",
        "12.34",
    ]


def test_an_empty_trace_has_no_numbers() -> None:
    assert _numbers(np.array([], dtype=np.int64)).tolist() == []
