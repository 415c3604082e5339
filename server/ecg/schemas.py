"""Response bodies and query parameters of the ECG API (the contract of issue 9)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from server.schemas import Out


class LeadOut(Out):
    """One lead's samples in whole microvolts (calibrated: sensitivity, correction, baseline)."""

    name: str = Field(examples=["II"], description="I, II, III, aVR, aVL, aVF, V1..V6, or a label")
    unit: Literal["uV"] = "uV"
    samples: list[int]
    derived: bool = Field(
        default=False,
        description="Computed from the stored limb leads (III, aVR, aVL, aVF from I and II).",
    )


class _Values(Out):
    """The measured values that the automatic and the device's measurements share."""

    heart_rate_bpm: float | None
    rr_ms: float | None
    pr_ms: float | None
    qrs_ms: float | None
    qt_ms: float | None
    qtc_bazett_ms: float | None
    qtc_fridericia_ms: float | None
    qrs_axis_deg: float | None


class MeasurementsOut(_Values):
    """Automatic global measurements: aids the reader confirms; null when not measured."""

    rhythm: Literal["regular", "irregular"] | None


class DeviceMeasurementsOut(_Values):
    """What the acquiring device stated in the file; null for what it does not state."""

    rhythm: str | None
    qtc_ms: float | None = Field(description="A QTc whose formula the file does not name.")
    p_axis_deg: float | None
    t_axis_deg: float | None
    statements: list[str] = Field(description="The device's interpretation, as it wrote it.")


class EcgOut(Out):
    """A calibrated ECG: GET /api/v1/ecg/{sop_instance_uid}."""

    sop_instance_uid: str
    study_uid: str
    sampling_frequency: float = Field(description="Hz")
    duration_s: float
    leads: list[LeadOut]
    measurements: MeasurementsOut
    device_measurements: DeviceMeasurementsOut
    notes: list[str] = Field(
        default_factory=list,
        description="What is missing, partial or computed, in plain words.",
    )


def _whole(value: Any) -> Any:
    """Query values arrive as text: '25' is the number 25."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


class SvgQuery(BaseModel):
    """Paper of GET /api/v1/ecg/{sop_instance_uid}.svg; other parameters are ignored."""

    model_config = ConfigDict(extra="ignore")

    layout: Literal["3x4", "12x1"] = Field(
        default="3x4", description="3x4 with a lead II rhythm strip, or 12x1"
    )
    speed: Annotated[Literal[25, 50], BeforeValidator(_whole)] = Field(
        default=25, description="Paper speed, mm/s"
    )
    gain: Annotated[Literal[5, 10, 20], BeforeValidator(_whole)] = Field(
        default=10, description="Gain, mm/mV"
    )
