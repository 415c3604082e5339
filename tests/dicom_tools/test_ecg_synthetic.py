"""The synthetic 12-lead ECG: deterministic, Einthoven-consistent, waves where the values say."""

from __future__ import annotations

import numpy as np
import pytest

from dicom_tools import ecg_synthetic
from dicom_tools.ecg_synthetic import LEAD_ORDER, synthetic_ecg


def test_standard_leads_in_microvolts_at_the_given_rate() -> None:
    leads = synthetic_ecg(duration_s=4, sampling_frequency=250)
    assert tuple(leads) == LEAD_ORDER
    assert all(v.shape == (1000,) and v.dtype == np.float64 for v in leads.values())
    # An R wave of about 1 mV: the largest lead swing is between 0.5 and 3 mV.
    assert 500 < max(float(np.ptp(v)) for v in leads.values()) < 3000


def test_deterministic_and_seeded() -> None:
    a = synthetic_ecg(noise_uv=20, wander_uv=200, seed=3)
    b = synthetic_ecg(noise_uv=20, wander_uv=200, seed=3)
    c = synthetic_ecg(noise_uv=20, wander_uv=200, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in LEAD_ORDER)
    assert not np.array_equal(a["II"], c["II"])
    assert np.array_equal(synthetic_ecg()["V2"], synthetic_ecg(seed=9)["V2"])  # no noise: no seed


def test_limb_leads_follow_einthoven_and_goldberger() -> None:
    v = synthetic_ecg(noise_uv=0)
    i, ii = v["I"], v["II"]
    np.testing.assert_allclose(v["III"], ii - i, atol=1e-9)
    np.testing.assert_allclose(v["aVR"], -(i + ii) / 2, atol=1e-9)
    np.testing.assert_allclose(v["aVL"], i - ii / 2, atol=1e-9)
    np.testing.assert_allclose(v["aVF"], ii - i / 2, atol=1e-9)


@pytest.mark.parametrize(
    ("kind", "axis"), [("p", 60.0), ("qrs", 45.0), ("qrs", -30.0), ("t", 80.0)]
)
def test_a_wave_reaches_one_percent_of_its_peak_exactly_at_its_onset_and_offset(
    kind: str, axis: float
) -> None:
    pulses = ecg_synthetic._placed(kind, 200.0, 290.0, axis)
    t = np.arange(0.0, 500.0, 0.01)
    magnitude = np.linalg.norm(ecg_synthetic._vector(pulses, t), axis=0)
    above = t[magnitude >= 0.01 * magnitude.max()]
    assert above[0] == pytest.approx(200.0, abs=0.06)
    assert above[-1] == pytest.approx(290.0, abs=0.06)


def test_qrs_net_area_points_along_the_axis() -> None:
    for axis in (-30.0, 45.0, 110.0):
        v = synthetic_ecg(qrs_axis_deg=axis, p_wave=False, heart_rate_bpm=60)
        # One QRS (onset 400 ms, 90 ms): net area of I (x) and of the frontal y component.
        qrs = slice(190, 255)
        x = float(np.sum(v["I"][qrs]))
        y = float(np.sum(v["aVF"][qrs])) / (np.sqrt(3) / 2)
        assert np.degrees(np.arctan2(y, x)) == pytest.approx(axis, abs=0.5)


def test_refuses_impossible_values() -> None:
    with pytest.raises(ValueError, match="positive"):
        synthetic_ecg(heart_rate_bpm=0)
    with pytest.raises(ValueError, match="QRS < QT"):
        synthetic_ecg(qrs_ms=400, qt_ms=380)


def test_rr_variation_makes_the_beats_irregular_but_stays_deterministic() -> None:
    a = synthetic_ecg(rr_variation=0.3, seed=1)
    assert np.array_equal(a["II"], synthetic_ecg(rr_variation=0.3, seed=1)["II"])
    assert not np.array_equal(a["II"], synthetic_ecg()["II"])
