"""Automatic ECG measurements: heart rate, RR, PR, QRS, QT, QTc, frontal QRS axis, rhythm.

TEMPORARY: replaced by the measurement helper's implementation at merge.
This stand-in keeps the shared interface (issue 9) and measures nothing: every value is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Rhythm = Literal["regular", "irregular"]


@dataclass(frozen=True, slots=True)
class Measurements:
    """Global measurements of a resting ECG; None where a value cannot be measured reliably."""

    heart_rate_bpm: float | None
    rr_ms: float | None
    pr_ms: float | None
    qrs_ms: float | None
    qt_ms: float | None
    qtc_bazett_ms: float | None
    qtc_fridericia_ms: float | None
    qrs_axis_deg: float | None
    rhythm: Rhythm | None

    def as_dict(self) -> dict[str, float | str | None]:
        """The measurements keyed by their field names."""
        return asdict(self)


def measure(
    leads: Mapping[str, npt.NDArray[np.float64]], sampling_frequency: float
) -> Measurements:
    """Measure the ECG (calibrated microvolts keyed by standard lead names); blocking."""
    del leads, sampling_frequency
    return Measurements(None, None, None, None, None, None, None, None, None)
