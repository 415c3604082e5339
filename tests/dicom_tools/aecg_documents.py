"""HL7 aECG documents for tests: the shared samples and small crafted ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tests.support import shared_data

_LEAD_CODES = {
    "I": "I", "II": "II", "III": "III", "aVR": "AVR", "aVL": "AVL", "aVF": "AVF",
    **{f"V{n}": f"V{n}" for n in range(1, 7)},
}  # fmt: skip


ENTITY_EXPANSION = b"""<?xml version="1.0"?>
<!DOCTYPE AnnotatedECG [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<AnnotatedECG xmlns="urn:hl7-org:v3">&b;</AnnotatedECG>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE AnnotatedECG [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<AnnotatedECG xmlns="urn:hl7-org:v3">&x;</AnnotatedECG>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE AnnotatedECG SYSTEM "http://127.0.0.1:9/aecg.dtd">
<AnnotatedECG xmlns="urn:hl7-org:v3"/>"""
"""Hostile documents: an entity expansion, an external entity (XXE), an external DTD."""


def sample(name: str) -> bytes:
    """One of the shared aECG samples in ../shared/data/ecg (skipped when absent, failed in CI)."""
    return shared_data("ecg", name).read_bytes()


def sequence(code: str, digits: Sequence[int], *, scale: str = "2.5", unit: str = "uV") -> str:
    """An SLIST_PQ lead sequence (origin 0)."""
    return (
        f'<component><sequence><code code="{code}" codeSystem="2.16.840.1.113883.6.24"/>'
        f'<value xsi:type="SLIST_PQ"><origin value="0" unit="{unit}"/>'
        f'<scale value="{scale}" unit="{unit}"/>'
        f"<digits>{' '.join(str(d) for d in digits)}</digits></value></sequence></component>"
    )


def document(
    leads: Mapping[str, Sequence[int]],
    *,
    increment: str = '<increment value="0.002" unit="s"/>',
    scale: str = "2.5",
    unit: str = "uV",
    subject: str = "",
    extra_sequences: str = "",
    root: str = "AnnotatedECG",
    namespace: str = "urn:hl7-org:v3",
    series_code: str = "RHYTHM",
) -> bytes:
    """A minimal aECG document with these leads (digits at `scale` `unit` per digit)."""
    sequences = "".join(
        sequence(f"MDC_ECG_LEAD_{_LEAD_CODES.get(name, name)}", digits, scale=scale, unit=unit)
        for name, digits in leads.items()
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{namespace}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<id root="61d1a24f-b47e-41aa-ae95-f8ac302f4eeb"/>'
        '<effectiveTime><center value="20240305143000"/></effectiveTime>'
        f"{subject}"
        f'<component><series><code code="{series_code}" codeSystem="2.16.840.1.113883.5.4"/>'
        "<component><sequenceSet>"
        '<component><sequence><code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>'
        f'<value xsi:type="GLIST_TS"><head value="20240305143000"/>{increment}</value>'
        f"</sequence></component>{sequences}{extra_sequences}"
        f"</sequenceSet></component></series></component></{root}>"
    ).encode()


def subject(name: str, identifier: str, birth: str, gender: str) -> str:
    """The componentOf chain naming a trial subject with demographics."""
    return (
        "<componentOf><timepointEvent><componentOf><subjectAssignment><subject><trialSubject>"
        f'<id root="2.16.840.1.113883.3.400" extension="{identifier}"/>'
        f"<subjectDemographicPerson><name>{name}</name>"
        f'<administrativeGenderCode code="{gender}" codeSystem="2.16.840.1.113883.5.1"/>'
        f'<birthTime value="{birth}"/></subjectDemographicPerson>'
        "</trialSubject></subject></subjectAssignment></componentOf></timepointEvent>"
        "</componentOf>"
    )


def sine_digits(samples: int = 2500, *, amplitude: int = 400, period: int = 400) -> list[int]:
    """Integer digits of a triangle-ish wave (deterministic, no randomness)."""
    return [(amplitude * ((i % period) - period // 2)) // (period // 2) for i in range(samples)]


def twelve_leads(samples: int = 2500) -> dict[str, list[int]]:
    """Eight recorded leads (I, II, V1-V6) with distinct digits; III and aVx are absent."""
    base = sine_digits(samples)
    names = ["I", "II", *(f"V{n}" for n in range(1, 7))]
    return {name: [d * (k + 1) // 4 + k for d in base] for k, name in enumerate(names)}
