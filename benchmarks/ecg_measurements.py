"""Accuracy and speed of dicom_tools.ecg_measurements on LUDB and on synthetic ECGs.

Ground truth, per LUDB record (60 records in ../shared/data/ecg/ludb-dev, 500 Hz, 10 s,
a cardiologist's onset/peak/offset of every P, QRS and T wave in each of the 12 leads):
the QRS complexes of the 12 leads are grouped into beats (overlapping onset..offset); per beat the
global QRS onset is the earliest onset over the leads and the QRS offset the latest offset, the
P onset the earliest onset of the P waves that peak in the 500 ms before that beat's QRS peak,
the T offset the latest offset of the T waves that peak between it and the next beat. The
record's PR, QRS and QT are the medians over the beats (PR over the beats with a P wave; no PR
when fewer than half the beats have one), its heart rate 60000 / the mean interval between the
beats' QRS peaks (the median over the leads' peak times).

Split, fixed: records 3-95 (the first 30 by number) tune the thresholds; records 98-200 are
held out and were never used for tuning. Axis: ludb.csv's category against the measured angle
(normal 30..70°, vertical 70..90°, horizontal 0..30°, left deviation < 0°, right > 90°), exact
and as "not deviated (0..90°) / left / right".

Prints one JSON line:
{"benchmark": "ecg_measurements", "ludb": {"tune": {measurement: {"n", "bias", "sd", "mae",
 "none", "reference_none"}}, "held_out": {...}}, "axis": {...}, "rhythm": {...},
 "synthetic": {...}, "time_ms": {"p50", "p95"}}

Usage: python benchmarks/ecg_measurements.py [--data DIR] [--details]
Environment: DOORSTEP_ECG_DATA (default ../shared/data/ecg relative to the repository root).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dicom_tools.ecg_measurements import Measurements, measure  # noqa: E402
from dicom_tools.ecg_synthetic import synthetic_ecg  # noqa: E402

LUDB_LEADS = {
    "i": "I",
    "ii": "II",
    "iii": "III",
    "avr": "aVR",
    "avl": "aVL",
    "avf": "aVF",
    "v1": "V1",
    "v2": "V2",
    "v3": "V3",
    "v4": "V4",
    "v5": "V5",
    "v6": "V6",
}
INTERVALS = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms")
TUNE_LAST = 95  # records numbered up to this one are the tuning split


def data_dir() -> Path:
    """The shared ECG data folder: DOORSTEP_ECG_DATA, else ../shared/data/ecg from the repo."""
    configured = os.environ.get("DOORSTEP_ECG_DATA")
    return Path(configured) if configured else ROOT.parent / "shared" / "data" / "ecg"


def ludb_records(folder: Path) -> list[int]:
    """The record numbers present in a ludb-dev folder, ascending."""
    return sorted(int(p.stem) for p in folder.glob("*.hea"))


def split_of(record: int) -> str:
    """'tune' for the records 3-95 (first 30), 'held_out' for the rest."""
    return "tune" if record <= TUNE_LAST else "held_out"


def read_ludb(folder: Path, record: int) -> tuple[dict[str, npt.NDArray[np.float64]], float]:
    """The 12 leads of one LUDB record in microvolts, and the sampling frequency."""
    import wfdb  # test/benchmark-only dependency

    data = wfdb.rdrecord(str(folder / str(record)))
    leads = {}
    for index, name in enumerate(data.sig_name):
        scale = {"mV": 1000.0, "uV": 1.0}[data.units[index]]
        leads[LUDB_LEADS[name]] = np.asarray(data.p_signal[:, index], dtype=np.float64) * scale
    return leads, float(data.fs)


@dataclass(frozen=True, slots=True)
class Wave:
    kind: str  # "p", "N" or "t"
    onset: int
    peak: int
    offset: int


def read_waves(folder: Path, record: int, lead: str) -> list[Wave]:
    """The annotated waves of one lead: each '(' kind ')' triple of the annotation file."""
    import wfdb

    ann = wfdb.rdann(str(folder / str(record)), lead)
    samples, symbols = list(ann.sample), list(ann.symbol)
    waves = []
    for i in range(1, len(symbols) - 1):
        if symbols[i] in ("p", "N", "t") and symbols[i - 1] == "(" and symbols[i + 1] == ")":
            waves.append(
                Wave(symbols[i], int(samples[i - 1]), int(samples[i]), int(samples[i + 1]))
            )
    return waves


def reference(folder: Path, record: int, fs: float) -> dict[str, float | None]:
    """The record's global reference values (definition in the module docstring)."""
    per_lead = [read_waves(folder, record, lead) for lead in LUDB_LEADS]
    qrs = sorted((w for waves in per_lead for w in waves if w.kind == "N"), key=lambda w: w.onset)
    beats: list[list[Wave]] = []
    for wave in qrs:
        if beats and wave.onset <= max(w.offset for w in beats[-1]):
            beats[-1].append(wave)
        else:
            beats.append([wave])
    peaks = [float(np.median([w.peak for w in beat])) for beat in beats]
    ps = [w for waves in per_lead for w in waves if w.kind == "p"]
    ts = [w for waves in per_lead for w in waves if w.kind == "t"]
    pr, qrs_d, qt = [], [], []
    for index, beat in enumerate(beats):
        on, off, peak = min(w.onset for w in beat), max(w.offset for w in beat), peaks[index]
        qrs_d.append(off - on)
        p_on = [w.onset for w in ps if peak - 0.5 * fs < w.peak < peak]
        if p_on:
            pr.append(on - min(p_on))
        following = peaks[index + 1] if index + 1 < len(peaks) else peak + 0.7 * fs
        t_off = [w.offset for w in ts if peak < w.peak < following]
        if t_off:
            qt.append(max(t_off) - on)
    ms = 1000.0 / fs
    return {
        "heart_rate_bpm": 60.0 * fs / float(np.mean(np.diff(peaks))) if len(peaks) > 2 else None,
        "pr_ms": float(np.median(pr)) * ms if len(pr) >= 0.5 * len(beats) and pr else None,
        "qrs_ms": float(np.median(qrs_d)) * ms if qrs_d else None,
        "qt_ms": float(np.median(qt)) * ms if qt else None,
    }


def ludb_table(folder: Path) -> dict[int, dict[str, str]]:
    """ludb.csv rows by record number."""
    with (folder / "ludb.csv").open(newline="") as handle:
        return {int(row["ID"]): row for row in csv.DictReader(handle)}


def axis_category(angle: float) -> str:
    """LUDB's axis categories for a frontal QRS axis in degrees (-180..180)."""
    if -90 <= angle < 0:
        return "left axis deviation"
    if 0 <= angle < 30:
        return "horizontal"
    if 30 <= angle < 70:
        return "normal"
    if 70 <= angle <= 90:
        return "vertical"
    return "right axis deviation"


def coarse(category: str) -> str:
    """Not deviated (horizontal, normal, vertical), left or right deviation."""
    return category if "deviation" in category else "not deviated"


def summary(errors: Iterable[float]) -> dict[str, float | int | None]:
    """n, bias (mean error), SD and mean absolute error, rounded to 0.1."""
    values = list(errors)
    if not values:
        return {"n": 0, "bias": None, "sd": None, "mae": None}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {
        "n": len(values),
        "bias": round(statistics.fmean(values), 1),
        "sd": round(sd, 1),
        "mae": round(statistics.fmean(abs(v) for v in values), 1),
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Row:
    record: int
    split: str
    measured: Measurements
    truth: dict[str, float | None]
    axis_label: str
    rhythm_label: str
    seconds: float


def evaluate_ludb(
    folder: Path, measurer: Callable[[Mapping[str, Any], float], Measurements] = measure
) -> list[Row]:
    """Measure every record (timed) and compute its reference."""
    table = ludb_table(folder)
    rows = []
    for record in ludb_records(folder):
        leads, fs = read_ludb(folder, record)
        started = time.perf_counter()
        measured = measurer(leads, fs)
        seconds = time.perf_counter() - started
        info = table.get(record, {})
        axis = info.get("Electric axis of the heart", "").replace(
            "Electric axis of the heart: ", ""
        )
        rows.append(
            Row(
                record,
                split_of(record),
                measured,
                reference(folder, record, fs),
                axis.strip(),
                info.get("Rhythms", "").strip(),
                seconds,
            )
        )
    return rows


def accuracy(rows: list[Row]) -> dict[str, Any]:
    """Per split and measurement: error summary, None counts (measured and reference)."""
    out: dict[str, Any] = {}
    for split in ("tune", "held_out"):
        chosen = [r for r in rows if r.split == split]
        per: dict[str, Any] = {}
        for key in INTERVALS:
            errors = []
            none = ref_none = 0
            for row in chosen:
                value, truth = getattr(row.measured, key), row.truth[key]
                if truth is None:
                    ref_none += 1
                    continue
                if value is None:
                    none += 1
                    continue
                errors.append(value - truth)
            per[key] = {**summary(errors), "none": none, "reference_none": ref_none}
        for key in ("qtc_bazett_ms", "qtc_fridericia_ms", "qrs_axis_deg", "rhythm"):
            per[key] = {"none": sum(getattr(r.measured, key) is None for r in chosen)}
        out[split] = per
    return out


def axis_agreement(rows: list[Row]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("tune", "held_out"):
        labelled = [r for r in rows if r.split == split and r.axis_label]
        measured = [r for r in labelled if r.measured.qrs_axis_deg is not None]
        exact = sum(axis_category(r.measured.qrs_axis_deg or 0) == r.axis_label for r in measured)
        rough = sum(
            coarse(axis_category(r.measured.qrs_axis_deg or 0)) == coarse(r.axis_label)
            for r in measured
        )
        out[split] = {"labelled": len(labelled), "measured": len(measured)}
        out[split] |= {"category_agree": exact, "deviation_agree": rough}
    return out


def rhythm_agreement(rows: list[Row]) -> dict[str, Any]:
    """Irregular vs the rhythm label: AF must be irregular, plain sinus rhythm regular."""
    af = [r for r in rows if "fibrillation" in r.rhythm_label]
    sinus = [r for r in rows if r.rhythm_label in ("Sinus rhythm", "Sinus bradycardia")]
    return {
        "af_irregular": f"{sum(r.measured.rhythm == 'irregular' for r in af)}/{len(af)}",
        "af_pr_none": f"{sum(r.measured.pr_ms is None for r in af)}/{len(af)}",
        "sinus_regular": f"{sum(r.measured.rhythm == 'regular' for r in sinus)}/{len(sinus)}",
    }


SYNTHETIC_CASES = (
    {"heart_rate_bpm": 72, "pr_ms": 160, "qrs_ms": 90, "qt_ms": 380, "qrs_axis_deg": 45},
    {"heart_rate_bpm": 50, "pr_ms": 200, "qrs_ms": 110, "qt_ms": 440, "qrs_axis_deg": -30},
    {"heart_rate_bpm": 100, "pr_ms": 130, "qrs_ms": 80, "qt_ms": 320, "qrs_axis_deg": 80},
    {"heart_rate_bpm": 60, "pr_ms": 180, "qrs_ms": 140, "qt_ms": 420, "qrs_axis_deg": 110},
)


def synthetic(noise_uv: float = 20.0) -> dict[str, Any]:
    """Errors on synthetic ECGs with known values, without and with noise and wander."""
    errors: dict[str, list[float]] = {k: [] for k in (*INTERVALS, "qrs_axis_deg")}
    for seed, case in enumerate(SYNTHETIC_CASES):
        for noise in (0.0, noise_uv):
            leads = synthetic_ecg(**case, seed=seed, noise_uv=noise, wander_uv=noise * 10)
            got = measure(leads, 500).as_dict()
            for key in errors:
                value = got[key]
                if isinstance(value, float):
                    errors[key].append(value - case[key])
    return {key: summary(values) for key, values in errors.items()}


def neurokit2_candidate(folder: Path, records: list[int]) -> dict[str, Any]:
    """The candidate not chosen, on the tuning records: neurokit2 0.3 lead by lead.

    ecg_clean and ecg_peaks (lead II) then ecg_delineate(method="dwt") in each of the 12 leads;
    per beat the global onset/offset over the leads either as the extreme (earliest onset,
    latest offset) or as the median lead; the record's value is the median over beats.
    """
    import warnings

    import neurokit2 as nk  # not a dependency: only for this comparison

    errors: dict[str, dict[str, list[float]]] = {"extreme": {}, "median": {}}
    seconds = []
    for record in records:
        if split_of(record) != "tune":
            continue
        leads, fs = read_ludb(folder, record)
        truth = reference(folder, record, fs)
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clean = {k: nk.ecg_clean(v / 1000, sampling_rate=fs) for k, v in leads.items()}
                _, info = nk.ecg_peaks(clean["II"], sampling_rate=fs)
                marks: dict[str, list[Any]] = {}
                for lead in clean.values():
                    _, waves = nk.ecg_delineate(lead, info["ECG_R_Peaks"], sampling_rate=fs)
                    for key in ("ECG_P_Onsets", "ECG_R_Onsets", "ECG_R_Offsets", "ECG_T_Offsets"):
                        marks.setdefault(key, []).append(np.asarray(waves[key], dtype=float))
        except Exception:  # a failure of the candidate is left out of its figures
            continue
        seconds.append(time.perf_counter() - started)
        p, on, off, t = (
            np.array(marks[k])
            for k in ("ECG_P_Onsets", "ECG_R_Onsets", "ECG_R_Offsets", "ECG_T_Offsets")
        )
        ms = 1000.0 / fs
        for name, early, late in (
            ("extreme", np.nanmin, np.nanmax),
            ("median", np.nanmedian, np.nanmedian),
        ):
            values = {
                "pr_ms": np.nanmedian(early(on, axis=0) - early(p, axis=0)) * ms,
                "qrs_ms": np.nanmedian(late(off, axis=0) - early(on, axis=0)) * ms,
                "qt_ms": np.nanmedian(late(t, axis=0) - early(on, axis=0)) * ms,
            }
            for key, value in values.items():
                if truth[key] is not None and np.isfinite(value):
                    errors[name].setdefault(key, []).append(float(value) - (truth[key] or 0))
    out: dict[str, Any] = {
        name: {key: summary(v) for key, v in per.items()} for name, per in errors.items()
    }
    out["time_ms_p50"] = round(1000 * percentile(seconds, 50), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--details", action="store_true", help="also print one line per record")
    parser.add_argument(
        "--neurokit2", action="store_true", help="also measure the neurokit2 candidate (slow)"
    )
    args = parser.parse_args()
    folder = args.data / "ludb-dev"
    rows = evaluate_ludb(folder)
    if args.details:
        for row in rows:
            got = row.measured.as_dict()
            line = {k: [got[k], row.truth[k] and round(row.truth[k] or 0, 1)] for k in INTERVALS}
            print(json.dumps({"record": row.record, "split": row.split, **line}), file=sys.stderr)
    # Timing: every record three times more, after the first pass warmed the caches; wall
    # clock and this process's CPU time (the machine may be shared).
    wall, cpu = [], []
    for _ in range(3):
        for row in rows:
            leads, fs = read_ludb(folder, row.record)
            started, started_cpu = time.perf_counter(), time.process_time()
            measure(leads, fs)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
    result = {
        "benchmark": "ecg_measurements",
        "ludb": accuracy(rows),
        "axis": axis_agreement(rows),
        "rhythm": rhythm_agreement(rows),
        "synthetic": synthetic(),
        "time_ms": {"p50": round(percentile(wall, 50), 2), "p95": round(percentile(wall, 95), 2)},
        "cpu_ms": {"p50": round(percentile(cpu, 50), 2), "p95": round(percentile(cpu, 95), 2)},
    }
    if args.neurokit2:
        result["neurokit2_tune"] = neurokit2_candidate(folder, [r.record for r in rows])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
