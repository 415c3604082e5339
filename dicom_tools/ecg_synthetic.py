"""A deterministic synthetic 12-lead ECG with known heart rate, PR, QRS, QT and frontal QRS axis.

For tests, benchmarks and demo data; not a physiological model. A heart vector H(t) in three
dimensions (x to the patient's left, y down, z to the front) is the sum of five waves per beat,
each a smooth pulse (``sin²`` rise and fall) times a fixed direction: P; the QRS as Q, R and S;
T. Every lead is the projection of H on its lead vector, so the leads are consistent by
construction: I = Hx, II = Hx/2 + (√3/2)·Hy, III = II - I, aVR = -(I + II)/2,
aVL = I - II/2, aVF = II - I/2, and V1-V6 on horizontal-plane directions from 115° (V1, right
front) to 0° (V6, left).

What the known values mean (the generator places the waves so that these hold exactly):

- **Onset / offset of a wave** (P, QRS, T): the first / last instant at which the magnitude
  |H(t)| of that wave alone reaches 1% of its own peak.
- **PR** = QRS onset - P onset; **QRS** = QRS offset - QRS onset; **QT** = T offset - QRS onset.
- **Heart rate**: beats exactly 60000 / heart_rate_bpm ms apart.
- These are the physical boundaries of the waves (a sin² pulse leaves the baseline at its
  start; its 1% point is within 1-3 ms of it), not the convention of
  ``dicom_tools.ecg_measurements``, which is calibrated to LUDB's annotators (global
  boundaries as extremes over 12 leads annotated one by one: QRS +23 ms, QT +30 ms) and whose
  40 Hz band spreads these waves' sharp edges by a few ms more. On them ``measure()`` reads
  PR known-4, QRS known+37, QT known+27 ms (+-2 / +-3 / +-5 over HR 50-120, PR 120-220,
  QRS 70-140, QT 320-480, axis -60..+120; tests/dicom_tools/test_ecg_measurements.py).
- **Frontal QRS axis**: the direction of the net QRS area in the frontal plane; the Q, R and S
  waves all lie along ±axis in that plane, so the direction is the axis exactly.

Noise (white, Gaussian, per lead) and baseline wander (a sum of two slow sinusoids per lead,
0.15 and 0.3 Hz with random phases) come from ``numpy.random.default_rng(seed)``: the same
arguments always give the same samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import numpy.typing as npt

from dicom_tools.ecg import LEAD_NAMES

_Floats = npt.NDArray[np.float64]

LEAD_ORDER = LEAD_NAMES
"""The twelve leads, in the standard order of dicom_tools.ecg."""
_PRECORDIAL_ANGLES = {"V1": 115.0, "V2": 95.0, "V3": 75.0, "V4": 55.0, "V5": 30.0, "V6": 0.0}
_THRESHOLD = 0.01  # a wave's onset/offset: where it reaches 1% of its peak


@dataclass(frozen=True, slots=True)
class _Pulse:
    """A smooth bump on [start, start + rise + fall] ms: sin² up over `rise`, down over `fall`."""

    start: float
    rise: float
    fall: float
    amplitude: float  # uV
    direction: tuple[float, float, float]

    def shape(self, t: _Floats) -> _Floats:
        u = t - self.start
        out = np.zeros_like(t)
        up = (u >= 0) & (u < self.rise)
        down = (u >= self.rise) & (u <= self.rise + self.fall)
        out[up] = np.sin(0.5 * np.pi * u[up] / self.rise) ** 2
        out[down] = np.cos(0.5 * np.pi * (u[down] - self.rise) / self.fall) ** 2
        return self.amplitude * out


def _unit(frontal_deg: float, z: float) -> tuple[float, float, float]:
    a = math.radians(frontal_deg)
    v = np.array([math.cos(a), math.sin(a), z])
    v = v / np.linalg.norm(v)
    return (float(v[0]), float(v[1]), float(v[2]))


def _vector(pulses: list[_Pulse], t: _Floats) -> _Floats:
    """H(t) of the given pulses: (3, samples)."""
    h = np.zeros((3, t.size))
    for pulse in pulses:
        h += np.outer(pulse.direction, pulse.shape(t))
    return h


def _qrs(start: float, length: float, axis_deg: float) -> list[_Pulse]:
    """Q, R and S over [start, start + length] ms, along -axis, +axis and -axis in the front."""
    back = axis_deg + 180.0
    return [
        _Pulse(start, 0.15 * length, 0.2 * length, 150.0, _unit(back, 1.2)),
        _Pulse(start + 0.12 * length, 0.3 * length, 0.33 * length, 1400.0, _unit(axis_deg, -0.35)),
        _Pulse(start + 0.5 * length, 0.22 * length, 0.28 * length, 450.0, _unit(back, -1.6)),
    ]


def _p(start: float, length: float) -> list[_Pulse]:
    return [_Pulse(start, 0.5 * length, 0.5 * length, 150.0, _unit(55.0, 0.3))]


def _t(start: float, length: float, axis_deg: float) -> list[_Pulse]:
    return [_Pulse(start, 0.62 * length, 0.38 * length, 350.0, _unit(axis_deg + 10.0, 0.5))]


@cache
def _fractions(kind: str, axis_deg: float) -> tuple[float, float]:
    """Where, as fractions of its support, a unit-length wave first and last reaches 1%."""
    t = np.linspace(-0.01, 1.01, 20401)
    pulses = {"p": _p(0, 1), "qrs": _qrs(0, 1, axis_deg), "t": _t(0, 1, axis_deg)}[kind]
    magnitude = np.linalg.norm(_vector(pulses, t), axis=0)
    above = np.nonzero(magnitude >= _THRESHOLD * magnitude.max())[0]
    return float(t[above[0]]), float(t[above[-1]])


def _placed(kind: str, onset: float, offset: float, axis_deg: float) -> list[_Pulse]:
    """The wave whose 1% onset and offset fall at the given instants (ms)."""
    a, b = _fractions(kind, axis_deg)
    length = (offset - onset) / (b - a)
    start = onset - a * length
    if kind == "p":
        return _p(start, length)
    if kind == "qrs":
        return _qrs(start, length, axis_deg)
    return _t(start, length, axis_deg)


def _lead_matrix() -> _Floats:
    """(12, 3): the lead vectors in LEAD_ORDER."""
    s = math.sqrt(3) / 2
    i = np.array([1.0, 0.0, 0.0])
    ii = np.array([0.5, s, 0.0])
    rows = [i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]
    for name in LEAD_ORDER[6:]:
        a = math.radians(_PRECORDIAL_ANGLES[name])
        rows.append(np.array([math.cos(a), 0.0, math.sin(a)]))
    return np.stack(rows)


def synthetic_ecg(
    heart_rate_bpm: float = 72,
    pr_ms: float = 160,
    qrs_ms: float = 90,
    qt_ms: float = 380,
    qrs_axis_deg: float = 45,
    duration_s: float = 10,
    sampling_frequency: float = 500,
    seed: int = 0,
    *,
    noise_uv: float = 0.0,
    wander_uv: float = 0.0,
    p_wave: bool = True,
    rr_variation: float = 0.0,
    p_amplitude_uv: float = 150.0,
    t_amplitude_uv: float = 350.0,
) -> dict[str, _Floats]:
    """A 12-lead ECG in microvolts keyed by standard lead names, with the given known values.

    The first QRS onset is at max(PR + 100 ms, 400 ms); then one beat every 60000 /
    heart_rate_bpm ms while the whole beat (to T offset) fits. ``p_wave=False`` leaves the
    P waves out; with ``rr_variation`` (a fraction, e.g. 0.25) each RR interval is drawn
    uniformly within +-that fraction of the nominal one (seeded), as in atrial fibrillation,
    and the heart rate is only nominal. ``p_amplitude_uv`` and ``t_amplitude_uv`` are the
    peak magnitudes of the P and T heart vectors (a lead shows at most that much).
    """
    if not (heart_rate_bpm > 0 and sampling_frequency > 0 and duration_s > 0):
        raise ValueError("heart rate, sampling frequency and duration must be positive")
    if not (0 < qrs_ms < qt_ms):
        raise ValueError("0 < QRS < QT is required")
    rr = 60000.0 / heart_rate_bpm
    n = round(duration_s * sampling_frequency)
    t: _Floats = np.arange(n, dtype=np.float64) * (1000.0 / sampling_frequency)
    total = duration_s * 1000.0
    st = max(40.0, 0.2 * (qt_ms - qrs_ms))
    pulses: list[_Pulse] = []
    rng = np.random.default_rng(seed)
    onset = max(pr_ms + 100.0, 400.0)
    while onset + qt_ms <= total - 50.0:
        if p_wave:
            p = _placed("p", onset - pr_ms, onset - pr_ms + min(110.0, 0.7 * pr_ms), 60.0)
            pulses += [replace(w, amplitude=p_amplitude_uv) for w in p]
        pulses += _placed("qrs", onset, onset + qrs_ms, qrs_axis_deg)
        t_wave = _placed("t", onset + qrs_ms + st, onset + qt_ms, qrs_axis_deg)
        pulses += [replace(w, amplitude=t_amplitude_uv) for w in t_wave]
        onset += rr * (1 + rng.uniform(-rr_variation, rr_variation)) if rr_variation else rr
    leads: _Floats = np.matmul(_lead_matrix(), _vector(pulses, t))
    if noise_uv > 0:
        leads = leads + rng.normal(0.0, noise_uv, size=leads.shape)
    if wander_uv > 0:
        seconds = t / 1000.0
        for frequency in (0.15, 0.3):
            phases = rng.uniform(0, 2 * np.pi, size=(leads.shape[0], 1))
            leads = leads + 0.5 * wander_uv * np.sin(2 * np.pi * frequency * seconds + phases)
    return {name: np.ascontiguousarray(leads[k]) for k, name in enumerate(LEAD_ORDER)}
