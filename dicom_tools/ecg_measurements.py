"""Automatic global measurements of a resting 12-lead ECG: rate, intervals, QRS axis, rhythm.

Aids for a reader who confirms or corrects them, never a diagnosis. Built on scipy.signal
(zero-phase Butterworth filters, ``find_peaks``) and numpy; every step works on all the leads
at once, not on lead II alone:

1. **Filtering**: 0.5 Hz high-pass (baseline wander) and 40 Hz low-pass, both zero-phase.
2. **Beats**: R complexes are peaks of a multi-lead QRS energy (5-30 Hz band, squared slope,
   each lead normalised by its own robust amplitude so that no single lead dominates, 80 ms
   moving window), at least 250 ms apart and above a third of the typical peak.
3. **Representative beat**: a lead that is mostly noise is left out; beats of the dominant
   morphology (QRS correlation ≥ 0.9 with the median beat; premature and aberrant beats are
   left out) are aligned by cross-correlation and averaged sample by sample with the median,
   lead by lead.
4. **Global boundaries** on the representative beat, from the spatial velocity (the norm of the
   slope vector over the independent leads I, II, V1-V6): QRS onset is where it first rises
   above a fraction of its QRS peak over the noise floor, QRS offset where it last falls below
   one. Because the spatial velocity is large as soon as *any* lead moves, the onset is the
   earliest over the leads and the offset the latest, while one noisy lead only raises the
   floor. P onset likewise from the spatial velocity of the atrial part (sought only when the
   P wave stands out of the beat-to-beat noise: not in atrial fibrillation). T offset by the
   tangent method lead by lead (steepest descent after the T peak meets the isoelectric level),
   then the second latest over the leads with a T wave (robust to one lead).
5. **Calibration**: constant shifts, measured on the tuning records, move the detected
   boundaries to where LUDB's cardiologists put them (QRS onset -15 ms, offset +8 ms, P onset
   -8 ms, T offset +15 ms).
6. **Values**: heart rate and RR from the mean RR interval; PR = QRS onset - P onset; QRS =
   offset - onset; QT = T offset - QRS onset; QTc Bazett QT/√RR and Fridericia QT/∛RR (RR in
   seconds); frontal QRS axis from the net QRS area of the limb leads (least squares on the
   hexaxial lead directions); rhythm ``irregular`` when more than 10% of the RR intervals differ
   from the median RR by more than 12%.

Anything that cannot be measured reliably is ``None``: fewer than 3 beats, a flat or noisy
record, pacemaker spikes, no P wave (PR), no limb leads (axis), a T wave that does not end
inside the beat (QT). Accuracy and its ground truth: docs/ecg.md, benchmarks/ecg_measurements.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import signal

Rhythm = Literal["regular", "irregular"]

_Floats = npt.NDArray[np.float64]

LIMB_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF")
PRECORDIAL_LEADS = ("V1", "V2", "V3", "V4", "V5", "V6")
_STANDARD = frozenset(LIMB_LEADS + PRECORDIAL_LEADS)
# Frontal-plane direction (degrees, 0 = left, +90 = down) and gain of each limb lead as a
# projection of the frontal heart vector (Einthoven triangle; augmented leads are √3/2).
_HEXAXIAL = {
    "I": (0.0, 1.0),
    "II": (60.0, 1.0),
    "III": (120.0, 1.0),
    "aVR": (-150.0, math.sqrt(3) / 2),
    "aVL": (-30.0, math.sqrt(3) / 2),
    "aVF": (90.0, math.sqrt(3) / 2),
}


@dataclass(frozen=True, slots=True)
class Measurements:
    """Global measurements of one ECG; ``None`` where a value cannot be measured reliably."""

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
        """The measurements keyed by field name (JSON-ready)."""
        return asdict(self)


NOTHING = Measurements(None, None, None, None, None, None, None, None, None)


@dataclass(frozen=True, slots=True)
class _Tuning:
    """Thresholds and offsets of the delineation, tuned on LUDB records 3-95 only (docs/ecg.md).

    Levels are fractions of the wave's peak spatial velocity above the floor; shifts (ms) move
    the detected boundaries to where annotators put them (onsets earlier, offsets later).
    """

    qrs_on: float = 0.03
    qrs_off: float = 0.03
    gap_ms: float = 20.0  # a QRS may dip under its level for less than this
    p_on: float = 0.08
    p_snr: float = 3.0  # P peak over the noise of the representative beat
    t_rank: int = 2  # T offset: the second latest over the leads
    t_amplitude: float = 0.15  # leads whose T is at least this fraction of the largest
    beat_correlation: float = 0.9
    lowpass_hz: float = 40.0
    on_shift_ms: float = -15.0
    off_shift_ms: float = 8.0
    p_shift_ms: float = -8.0
    t_shift_ms: float = 15.0


_TUNING = _Tuning()
_MIN_BEATS = 3
_MIN_SECONDS = 2.0


def measure(leads: Mapping[str, _Floats], sampling_frequency: float) -> Measurements:
    """Measure an ECG given as calibrated microvolts keyed by standard lead names (any subset).

    Pure, blocking and deterministic; never raises on odd signals (flat, noise, too short):
    what cannot be measured is ``None``.
    """
    return _measure(leads, sampling_frequency, _TUNING)


@dataclass(frozen=True, slots=True)
class _Record:
    names: tuple[str, ...]
    fs: float
    filtered: _Floats  # (leads, samples), 0.5-40 Hz


def _prepare(leads: Mapping[str, _Floats], fs: float, lowpass_hz: float = 40.0) -> _Record | None:
    if not (math.isfinite(fs) and 100 <= fs <= 20000):
        return None
    chosen: list[tuple[str, _Floats]] = []
    for name, samples in leads.items():
        if name not in _STANDARD:
            continue
        array = np.asarray(samples, dtype=np.float64)
        if array.ndim != 1 or not np.all(np.isfinite(array)):
            continue
        chosen.append((name, array))
    if not chosen:
        return None
    length = min(a.size for _, a in chosen)
    if length < _MIN_SECONDS * fs:
        return None
    data = np.stack([a[:length] for _, a in chosen])
    filtered = signal.sosfiltfilt(_band(fs, 0.5, min(lowpass_hz, 0.45 * fs)), data, axis=1)
    return _Record(tuple(n for n, _ in chosen), fs, filtered)


@cache
def _band(fs: float, low: float, high: float) -> _Floats:
    """Second-order sections of a Butterworth band: 2nd-order high-pass, 4th-order low-pass."""
    sections: _Floats = np.vstack(
        [
            signal.butter(2, low, "highpass", fs=fs, output="sos"),
            signal.butter(4, high, "lowpass", fs=fs, output="sos"),
        ]
    )
    return sections


@cache
def _qrs_band(fs: float) -> _Floats:
    """The QRS energy band, 5-30 Hz (Butterworth band-pass of order 2)."""
    sections: _Floats = signal.butter(
        2, [5.0, min(30.0, 0.4 * fs)], "bandpass", fs=fs, output="sos"
    )
    return sections


def _ms(samples: float, fs: float) -> float:
    return 1000.0 * samples / fs


def _n(ms: float, fs: float) -> int:
    return round(ms * fs / 1000.0)


def _has_spikes(leads: Mapping[str, _Floats], names: tuple[str, ...]) -> bool:
    """Sample-to-sample jumps far beyond the QRS slopes in most leads (a pacemaker's spikes).

    Measured on the unfiltered samples: the largest step is over 8 times the 99th percentile
    of the steps (a QRS gives 2-4.5 on LUDB records; a ventricular pacemaker 6-30).
    """
    ratios = []
    for name in names:
        steps = np.abs(np.diff(np.asarray(leads[name], dtype=np.float64)))
        k = int(0.99 * (steps.size - 1))
        typical = float(np.partition(steps, k)[k])
        if typical > 0:
            ratios.append(float(np.max(steps)) / typical)
    return bool(ratios) and float(np.median(ratios)) > 8.0


def _r_peaks(record: _Record) -> npt.NDArray[np.int64]:
    """Sample indices of the QRS complexes, from a multi-lead energy signal."""
    fs = record.fs
    band = _qrs_band(fs)
    slope = np.diff(signal.sosfiltfilt(band, record.filtered, axis=1), axis=1)
    scale = np.percentile(np.abs(slope), 99, axis=1)
    usable = scale > 1e-9
    if not np.any(usable):
        return np.zeros(0, dtype=np.int64)
    energy = np.sum((slope[usable] / scale[usable, None]) ** 2, axis=0)
    width = max(1, _n(80, fs))
    energy = np.convolve(energy, np.ones(width) / width, mode="same")
    distance = max(1, _n(250, fs))
    # A robust first level (a pacing spike or an artefact may tower over every QRS), then a
    # third of the typical QRS peak.
    first = 0.3 * float(np.percentile(energy, 99))
    peaks, props = signal.find_peaks(energy, height=first, distance=distance)
    if peaks.size == 0:
        return np.zeros(0, dtype=np.int64)
    typical = float(np.median(props["peak_heights"]))
    peaks, _ = signal.find_peaks(energy, height=typical / 3, distance=distance)
    found: npt.NDArray[np.int64] = np.asarray(peaks, dtype=np.int64)
    return found


def _without_noisy_leads(record: _Record, peaks: npt.NDArray[np.int64]) -> _Record:
    """Leave out a lead that is mostly noise: its beat-to-beat residual, relative to its own
    beat, is over 0.75 and over 3 times the leads' median (breathing modulates every lead's
    amplitude alike; noise in one lead does not)."""
    half = _n(300, record.fs)
    inside = peaks[(peaks - half >= 0) & (peaks + half < record.filtered.shape[1])]
    if inside.size < _MIN_BEATS or len(record.names) < 3:
        return record
    beats = record.filtered[:, inside[:, None] + np.arange(-half, half + 1)[None, :]]
    median = np.median(beats, axis=1, keepdims=True)
    residual = np.sqrt(np.mean((beats - median) ** 2, axis=(1, 2)))
    amplitude = np.sqrt(np.mean(median**2, axis=(1, 2)))
    ratio = residual / np.maximum(amplitude, 1e-9)
    keep = ratio <= max(3 * float(np.median(ratio)), 0.75)
    if np.all(keep):
        return record
    names = tuple(n for n, k in zip(record.names, keep, strict=True) if k)
    return _Record(names, record.fs, record.filtered[keep])


def _rhythm(rr: _Floats) -> Rhythm:
    """Irregular when more than 10% of RR intervals are more than 12% from the median RR."""
    median = float(np.median(rr))
    off = np.abs(rr - median) > 0.12 * median
    return "irregular" if float(np.mean(off)) > 0.10 else "regular"


@dataclass(frozen=True, slots=True)
class _Analysis:
    record: _Record  # the leads used (a noisy lead left out)
    rr_ms: _Floats
    beat: _Beat | None
    bounds: _Bounds


def _analyse(leads: Mapping[str, _Floats], fs: float, tuning: _Tuning) -> _Analysis | None:
    """Beats, representative beat and global boundaries; None when there are no usable beats."""
    record = _prepare(leads, fs, tuning.lowpass_hz)
    if record is None or _has_spikes(leads, record.names):
        # Pacing spikes (or artefacts of the same kind): the boundaries would be the spikes'.
        return None
    peaks = _r_peaks(record)
    if peaks.size < _MIN_BEATS:
        return None
    rr = np.diff(peaks) * (1000.0 / fs)
    if np.any(rr < 250) or np.any(rr > 2500):
        # Implausible beat spacing: noise, not QRS complexes.
        return None
    record = _without_noisy_leads(record, peaks)
    beat = _representative_beat(record, peaks, float(np.median(rr)), tuning)
    if beat is None:
        return _Analysis(record, rr, None, _Bounds(None, None, None, None))
    return _Analysis(record, rr, beat, _delineate(record, beat, float(np.mean(rr)), tuning))


def _measure(leads: Mapping[str, _Floats], fs: float, tuning: _Tuning) -> Measurements:
    analysis = _analyse(leads, fs, tuning)
    if analysis is None or analysis.beat is None:
        return NOTHING
    bounds = analysis.bounds
    mean_rr = float(np.mean(analysis.rr_ms))
    rr_s = mean_rr / 1000.0
    qrs = pr = qt = axis = None
    if bounds.qrs_on is not None and bounds.qrs_off is not None:
        qrs = _ms(bounds.qrs_off - bounds.qrs_on, fs)
        if bounds.p_on is not None:
            pr = _ms(bounds.qrs_on - bounds.p_on, fs)
        if bounds.t_off is not None:
            qt = _ms(bounds.t_off - bounds.qrs_on, fs)
        axis = _frontal_axis(
            analysis.record.names, analysis.beat.median, bounds.qrs_on, bounds.qrs_off
        )
    return Measurements(
        heart_rate_bpm=_round(60000.0 / mean_rr),
        rr_ms=_round(mean_rr),
        pr_ms=_round(pr),
        qrs_ms=_round(qrs),
        qt_ms=_round(qt),
        qtc_bazett_ms=_round(qt / math.sqrt(rr_s)) if qt is not None else None,
        qtc_fridericia_ms=_round(qt / rr_s ** (1 / 3)) if qt is not None else None,
        qrs_axis_deg=_round(axis),
        rhythm=_rhythm(analysis.rr_ms),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


@dataclass(frozen=True, slots=True)
class _Beat:
    median: _Floats  # (leads, window)
    beats: _Floats  # (leads, beats, window): the aligned beats of the dominant morphology
    fiducial: int  # index of the R fiducial in the window


_PRE_MS = 450.0
_POST_MS = 750.0


def _representative_beat(
    record: _Record, peaks: npt.NDArray[np.int64], median_rr: float, tuning: _Tuning
) -> _Beat | None:
    fs = record.fs
    x = record.filtered
    pre = _n(_PRE_MS, fs)
    post = min(_n(_POST_MS, fs), _n(max(median_rr, 400.0), fs) + _n(150, fs))
    shift = _n(20, fs)
    inside = peaks[(peaks - pre - shift >= 0) & (peaks + post + shift < x.shape[1])]
    if inside.size < _MIN_BEATS:
        return None
    # Refine each beat's fiducial by cross-correlating its QRS (-60..+80 ms) with the median.
    q0, q1 = _n(60, fs), _n(80, fs)
    qrs_window = np.arange(-q0, q1 + 1)
    segments = x[:, inside[:, None] + qrs_window[None, :]]  # (L, B, Q)
    template = np.median(segments, axis=1)  # (L, Q)
    shifts = np.arange(-shift, shift + 1)
    shifted = x[:, inside[:, None, None] + shifts[None, :, None] + qrs_window[None, None, :]]
    scores = np.einsum("lbsq,lq->bs", shifted, template)
    inside = inside + shifts[np.argmax(scores, axis=1)]
    segments = x[:, inside[:, None] + qrs_window[None, :]]
    template = np.median(segments, axis=1)
    flat_t = (template - template.mean(axis=1, keepdims=True)).ravel()
    centred = segments - segments.mean(axis=2, keepdims=True)
    flat_b = np.transpose(centred, (1, 0, 2)).reshape(inside.size, -1)
    norms = np.linalg.norm(flat_b, axis=1) * np.linalg.norm(flat_t)
    if not np.all(norms > 0):
        return None
    correlation = flat_b @ flat_t / norms
    dominant = inside[correlation >= tuning.beat_correlation]
    if dominant.size < _MIN_BEATS or dominant.size < 0.5 * inside.size:
        return None
    window = np.arange(-pre, post + 1)
    beats = x[:, dominant[:, None] + window[None, :]]
    return _Beat(np.median(beats, axis=1), beats, pre)


@dataclass(frozen=True, slots=True)
class _Bounds:
    p_on: int | None
    qrs_on: int | None
    qrs_off: int | None
    t_off: int | None


def _independent(names: tuple[str, ...]) -> npt.NDArray[np.intp]:
    """Rows of the leads that carry independent information (I, II and V1-V6 when present)."""
    if "I" in names and "II" in names:
        keep = [i for i, n in enumerate(names) if n in ("I", "II") or n in PRECORDIAL_LEADS]
    else:
        keep = list(range(len(names)))
    return np.asarray(keep, dtype=np.intp)


def _spatial_velocity(beat: _Floats, fs: float) -> _Floats:
    slope = np.gradient(beat, axis=1) * (fs / 1000.0)  # uV per ms
    speed: _Floats = np.sqrt(np.sum(slope**2, axis=0))
    return speed


def _delineate(record: _Record, beat: _Beat, mean_rr: float, tuning: _Tuning) -> _Bounds:
    fs = record.fs
    rows = _independent(record.names)
    median = beat.median[rows]
    speed = _spatial_velocity(median, fs)
    r = beat.fiducial
    # QRS: the region around the fiducial where the spatial velocity stands above the floor.
    lo, hi = r - _n(120, fs), r + _n(200, fs)
    peak = float(np.max(speed[r - _n(60, fs) : r + _n(60, fs) + 1]))
    floor = float(np.percentile(speed[r - _n(350, fs) : r - _n(40, fs)], 10))
    if peak <= 3 * floor or peak <= 0:
        return _Bounds(None, None, None, None)
    on_level = floor + tuning.qrs_on * (peak - floor)
    off_level = floor + tuning.qrs_off * (peak - floor)
    centre = r - _n(60, fs) + int(np.argmax(speed[r - _n(60, fs) : r + _n(60, fs) + 1]))
    gap = max(1, _n(tuning.gap_ms, fs))
    qrs_on = _run_around(speed[lo:hi] >= on_level, centre - lo, gap)[0] + lo
    qrs_off = _run_around(speed[lo:hi] >= off_level, centre - lo, gap)[1] + lo
    if qrs_on <= lo or qrs_off >= hi:
        return _Bounds(None, None, None, None)
    t_off = _t_offset(beat.median, qrs_on, qrs_off, mean_rr, fs, tuning)
    p_on = _p_onset(beat, rows, qrs_on, t_off, mean_rr, fs, tuning)
    # The detectors mark where a wave is clearly under way; the annotators' boundaries lie a
    # constant few ms outside (measured on the tuning records): shift by those constants.
    return _Bounds(
        None if p_on is None else p_on + _n(tuning.p_shift_ms, fs),
        qrs_on + _n(tuning.on_shift_ms, fs),
        qrs_off + _n(tuning.off_shift_ms, fs),
        None if t_off is None else t_off + _n(tuning.t_shift_ms, fs),
    )


def _run_around(above: npt.NDArray[np.bool_], centre: int, gap: int) -> tuple[int, int]:
    """[start, end) of the run of ``above`` containing ``centre``, bridging gaps under ``gap``."""
    below = ~above
    start = centre
    while start > 0:
        if not above[start - 1]:
            run = below[max(0, start - gap) : start]
            if run.size >= gap and np.all(run):
                break
        start -= 1
    end = centre
    while end < above.size:
        if not above[end]:
            run = below[end : end + gap]
            if run.size >= gap and np.all(run):
                break
        end += 1
    while start < centre and not above[start]:
        start += 1
    while end > centre and not above[end - 1]:
        end -= 1
    return start, end


def _t_offset(
    median: _Floats, qrs_on: int, qrs_off: int, mean_rr: float, fs: float, tuning: _Tuning
) -> int | None:
    """T offset: per lead tangent method, then the ``t_rank``-th latest over leads with a T."""
    start = qrs_off + _n(60, fs)
    stop = min(median.shape[1] - 1, qrs_on + _n(min(0.75 * mean_rr, 650.0), fs))
    if stop - start < _n(100, fs):
        return None
    iso = np.mean(median[:, qrs_on - _n(20, fs) : qrs_on - _n(5, fs) + 1], axis=1)
    waves = median[:, start:stop] - iso[:, None]
    found: list[tuple[int, float]] = []
    for segment in waves:
        peak = int(np.argmax(np.abs(segment)))
        sign = 1.0 if segment[peak] >= 0 else -1.0
        end = _tangent_end(segment * sign)
        if end is not None:
            found.append((start + end, abs(float(segment[peak]))))
    if not found:
        return None
    strongest = max(a for _, a in found)
    candidates = sorted(e for e, a in found if a >= tuning.t_amplitude * strongest)
    rank = min(tuning.t_rank, len(candidates))
    return candidates[-rank]


def _tangent_end(wave: _Floats) -> int | None:
    """Where the tangent at the steepest descent after the peak of ``wave`` meets zero."""
    peak = int(np.argmax(wave))
    slope = np.gradient(wave)
    if slope.size - peak < 3:
        return None
    steepest = peak + int(np.argmin(slope[peak:]))
    if slope[steepest] >= 0:
        return None
    crossing = steepest - float(wave[steepest]) / float(slope[steepest])
    return round(crossing) if crossing < wave.size else None


def _p_onset(
    beat: _Beat,
    rows: npt.NDArray[np.intp],
    qrs_on: int,
    t_off: int | None,
    mean_rr: float,
    fs: float,
    tuning: _Tuning,
) -> int | None:
    """P onset from the spatial velocity of the atrial part, when a P wave stands out."""
    start = qrs_on - _n(320, fs)
    if t_off is not None:
        start = max(start, t_off - _n(mean_rr, fs) + _n(20, fs))
    stop = qrs_on - _n(30, fs)
    if stop - start < _n(60, fs) or start < 0:
        return None
    beats = beat.beats[rows]
    median = beat.median[rows]
    iso = median[:, stop : qrs_on - _n(5, fs) + 1].mean(axis=1, keepdims=True)
    deviation = median[:, start:stop] - iso
    magnitude = np.sqrt(np.sum(deviation**2, axis=0))
    residual = beats[:, :, start:stop] - median[:, None, start:stop]
    noise = float(np.sqrt(np.sum(np.mean(residual**2, axis=(1, 2))) / beats.shape[1]))
    p_peak = int(np.argmax(magnitude))
    if magnitude[p_peak] < tuning.p_snr * max(noise, 1.0) or p_peak < _n(20, fs):
        return None
    speed = _spatial_velocity(median[:, start:stop], fs)
    peak_speed = float(np.max(speed[: p_peak + 1]))
    floor = float(np.min(speed[: p_peak + 1]))
    level = floor + tuning.p_on * (peak_speed - floor)
    below = np.nonzero(speed[: int(np.argmax(speed[: p_peak + 1])) + 1] < level)[0]
    if below.size == 0:
        return None
    return start + int(below[-1]) + 1


def _frontal_axis(
    names: tuple[str, ...], median: _Floats, qrs_on: int, qrs_off: int
) -> float | None:
    """Frontal QRS axis (degrees, -180..180) from the net QRS area of the limb leads."""
    rows = [i for i, n in enumerate(names) if n in _HEXAXIAL]
    if len(rows) < 2:
        return None
    directions = np.array([_HEXAXIAL[names[i]] for i in rows])
    angles = np.radians(directions[:, 0])
    basis = directions[:, 1:2] * np.column_stack([np.cos(angles), np.sin(angles)])
    if np.linalg.matrix_rank(basis) < 2:
        return None
    level = median[rows, qrs_on : qrs_on + 1]
    area = np.sum(median[rows, qrs_on : qrs_off + 1] - level, axis=1)
    vector, *_ = np.linalg.lstsq(basis, area, rcond=None)
    if not np.any(vector):
        return None
    return math.degrees(math.atan2(float(vector[1]), float(vector[0])))
