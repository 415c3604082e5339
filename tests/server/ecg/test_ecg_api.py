"""The ECG API through the server: the JSON contract, the SVG paper, scoping, audit, ETags."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from dicom_tools.ecg import LEAD_NAMES, read_ecg, whole_microvolts
from dicom_tools.ecg_measurements import measure
from server import keys
from tests.dicom_tools.ecg_files import (
    MEASUREMENT_KEYS,
    channel,
    ecg_with,
    encoded,
    group,
    waveform_ecg,
)
from tests.dicom_tools.part10 import bundled
from tests.dicom_tools.test_ecg import HOSTILE
from tests.support import Client, World, audit_events, store


async def _stored(client: Client, world: World, data: bytes, org: str = "clinic-a") -> str:
    (result,) = await store(client.app, world.orgs[org], [data])
    assert result.outcome == "stored", result
    assert result.sop_instance_uid is not None
    return result.sop_instance_uid


async def _get(client: Client, world: World, path: str, user: str = "gp-a", **headers: str) -> Any:
    return await client.get(path, headers={**world.auth(user), **headers})


async def test_json_contract_on_pydicom_s_waveform_ecg(client: Client, world: World) -> None:
    data = bundled("waveform_ecg.dcm").read_bytes()
    sop = await _stored(client, world, data)
    response = await _get(client, world, f"/api/v1/ecg/{sop}")
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) >= {
        "sop_instance_uid",
        "study_uid",
        "sampling_frequency",
        "duration_s",
        "leads",
        "measurements",
        "device_measurements",
    }
    assert body["sop_instance_uid"] == sop
    assert body["study_uid"] == pydicom.dcmread(bundled("waveform_ecg.dcm")).StudyInstanceUID
    assert (body["sampling_frequency"], body["duration_s"]) == (1000.0, 10.0)
    assert [lead["name"] for lead in body["leads"]] == list(LEAD_NAMES)
    reader = read_ecg(data)
    for lead, ours in zip(body["leads"], reader.leads, strict=True):
        assert lead["unit"] == "uV"
        assert all(type(v) is int for v in lead["samples"])
        assert lead["samples"] == whole_microvolts(ours.samples_uv).tolist()
    assert list(body["measurements"]) == list(MEASUREMENT_KEYS)
    for value in body["measurements"].values():
        assert value is None or isinstance(value, int | float | str)
    device = body["device_measurements"]
    assert set(device) >= {*MEASUREMENT_KEYS, "statements"}
    assert (device["pr_ms"], device["qrs_ms"], device["qt_ms"], device["rr_ms"]) == (
        161,
        75,
        368,
        982,
    )
    assert device["statements"] == ["RITMO SINUSALE", "ECG NORMALE"]
    (event,) = await audit_events(client.app, "dicom.retrieve")
    assert (event.actor, event.outcome, event.object_id) == ("gp-a", "success", sop)
    assert json.loads(event.details)["purpose"] == "ecg"


async def test_measurements_are_those_of_the_reader_s_leads(client: Client, world: World) -> None:
    """The API measures what dicom_tools.ecg reads: the same code on the same data, exactly."""
    data = bundled("waveform_ecg.dcm").read_bytes()
    sop = await _stored(client, world, data)
    body = await (await _get(client, world, f"/api/v1/ecg/{sop}")).json()
    reader = read_ecg(data)
    expected = measure(reader.standard_leads(), reader.sampling_frequency).as_dict()
    assert body["measurements"] == expected
    # the device's own heart rate in the file (RR 982 ms: 61.1 bpm), to 2 bpm
    assert body["device_measurements"]["heart_rate_bpm"] == 61.1
    assert body["measurements"]["heart_rate_bpm"] == pytest.approx(61.1, abs=2.0)
    assert body["device_measurements"] == {
        **reader.device.as_dict(),
        "statements": ["RITMO SINUSALE", "ECG NORMALE"],
    }


async def test_a_flat_line_has_no_measurements(client: Client, world: World) -> None:
    flat = np.zeros((5000, 12), dtype=np.int16)
    data = encoded(ecg_with([group([channel(n) for n in LEAD_NAMES], flat)]))
    sop = await _stored(client, world, data)
    body = await (await _get(client, world, f"/api/v1/ecg/{sop}")).json()
    assert body["measurements"] == dict.fromkeys(MEASUREMENT_KEYS)
    assert {tuple(set(lead["samples"])) for lead in body["leads"]} == {(0,)}


async def test_an_instance_without_ecg_is_422(client: Client, world: World) -> None:
    sop = await _stored(client, world, bundled("CT_small.dcm").read_bytes())
    for path in (f"/api/v1/ecg/{sop}", f"/api/v1/ecg/{sop}.svg"):
        response = await _get(client, world, path)
        assert response.status == 422, path
        error = (await response.json())["error"]
        assert error["code"] == "ecg_unreadable"
        assert error["details"]["reason"] == "not_ecg"


async def test_other_organisations_unknown_instances_and_anonymous_callers(
    client: Client, world: World
) -> None:
    sop = await _stored(client, world, bundled("waveform_ecg.dcm").read_bytes())
    unknown = "1.2.826.0.1.3680043.8.498.999"
    for path in (f"/api/v1/ecg/{sop}", f"/api/v1/ecg/{sop}.svg"):
        response = await _get(client, world, path, "gp-b")
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"
        assert (await _get(client, world, path, "kiosk")).status == 403
        assert (await client.get(path)).status == 401
    assert (await _get(client, world, f"/api/v1/ecg/{unknown}")).status == 404
    assert (await _get(client, world, "/api/v1/ecg/1..2")).status == 400
    events = await audit_events(client.app, "dicom.retrieve")
    seen = [(e.actor, e.outcome, e.object_id, e.org_id) for e in events]
    assert seen == [
        ("gp-b", "denied", sop, world.orgs["clinic-a"]),  # recorded with the owner
        ("gp-b", "denied", sop, world.orgs["clinic-a"]),
        ("gp-a", "failure", unknown, world.orgs["clinic-a"]),
    ]
    assert [json.loads(e.details)["purpose"] for e in events] == ["ecg", "ecg.svg", "ecg"]


async def test_strong_etag_and_304_and_the_cache(client: Client, world: World) -> None:
    sop = await _stored(client, world, bundled("waveform_ecg.dcm").read_bytes())
    path = f"/api/v1/ecg/{sop}"
    first = await _get(client, world, path)
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{64}"', etag)
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert first.headers["Vary"] == "Accept, Authorization, Cookie"
    body = await first.read()
    cache = client.app[keys.ECG_CACHE]
    hits = cache.hits
    second = await _get(client, world, path)
    assert (second.headers["ETag"], await second.read()) == (etag, body)
    assert cache.hits == hits + 1  # answered from the cache, not read again
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        unchanged = await _get(client, world, path, **{"If-None-Match": header})
        assert unchanged.status == 304, header
        assert await unchanged.read() == b""
        assert unchanged.headers["ETag"] == etag
    changed = await _get(client, world, path, **{"If-None-Match": '"other"'})
    assert changed.status == 200
    svg = await _get(client, world, path + ".svg")
    assert svg.headers["ETag"] != etag
    again = await _get(client, world, path + ".svg", **{"If-None-Match": svg.headers["ETag"]})
    assert again.status == 304
    outcomes = [e.outcome for e in await audit_events(client.app, "dicom.retrieve")]
    assert outcomes == ["success"] * 9  # a 304 is a read too


async def test_svg_paper_headers_and_parameters(client: Client, world: World) -> None:
    hostile = waveform_ecg()
    hostile.PatientName = "<script>alert(1)</script>^Eve"
    sop = await _stored(client, world, encoded(hostile))
    response = await _get(client, world, f"/api/v1/ecg/{sop}.svg")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]  # unchanged
    text = await response.text()
    assert "<script" not in text
    root = ET.fromstring(text)
    assert root.get("width", "").endswith("mm")
    assert "<SCRIPT>ALERT(1)</SCRIPT>, Eve" in "".join(root.itertext())  # person_name's form
    rows = {}
    for query in ("layout=12x1", "layout=3x4&speed=50&gain=20", "speed=25&gain=5", "extra=1"):
        reply = await _get(client, world, f"/api/v1/ecg/{sop}.svg?{query}")
        assert reply.status == 200, query
        rows[query] = ET.fromstring(await reply.text())
    calibration = [
        p
        for p in rows["layout=3x4&speed=50&gain=20"].iter("{http://www.w3.org/2000/svg}path")
        if p.get("data-role") == "calibration"
    ]
    ys = [float(n) for n in calibration[0].get("d", "").split()[1:] if n != "L"][1::2]
    assert max(ys) - min(ys) == pytest.approx(20.0, abs=1e-9)
    for bad in ("layout=2x6", "speed=30", "gain=abc", "gain=10.5", "layout="):
        reply = await _get(client, world, f"/api/v1/ecg/{sop}.svg?{bad}")
        assert reply.status == 400, bad
        assert (await reply.json())["error"]["code"] == "malformed"


def _mutated(change: Callable[[Dataset], None]) -> bytes:
    ds = waveform_ecg()
    change(ds)
    return encoded(ds)


ARCHIVE_REFUSES = {"no waveform sequence"}
"""Hostile files that the archive itself refuses to store (dicom_tools.ingest)."""


@pytest.mark.parametrize("case", [c for c in HOSTILE if c != "CT SOP class"])
async def test_hostile_ecg_files_get_422_never_500(client: Client, world: World, case: str) -> None:
    change, reason = HOSTILE[case]
    data = _mutated(change)
    if case in ARCHIVE_REFUSES:
        (result,) = await store(client.app, world.orgs["clinic-a"], [data])
        assert (result.outcome, result.reason) == ("rejected", "missing_attribute")
        return
    sop = await _stored(client, world, data)
    for path in (f"/api/v1/ecg/{sop}", f"/api/v1/ecg/{sop}.svg"):
        response = await _get(client, world, path)
        assert response.status == 422, (case, path, await response.text())
        error = (await response.json())["error"]
        assert (error["code"], error["details"]["reason"]) == ("ecg_unreadable", reason)


async def test_partial_ecgs_say_what_is_missing(client: Client, world: World) -> None:
    raw = np.random.default_rng(1).integers(-900, 900, (5000, 2)).astype(np.int16)
    sop = await _stored(
        client, world, encoded(ecg_with([group([channel("I"), channel("II")], raw)]))
    )
    body = await (await _get(client, world, f"/api/v1/ecg/{sop}")).json()
    assert [(lead["name"], lead["derived"]) for lead in body["leads"]] == [
        ("I", False),
        ("II", False),
        ("III", True),
        ("aVR", True),
        ("aVL", True),
        ("aVF", True),
    ]
    assert "Not in the file: V1, V2, V3, V4, V5 and V6." in body["notes"]
    svg = await _get(client, world, f"/api/v1/ecg/{sop}.svg")
    assert "V1 (not in the file)" in await svg.text()


async def test_the_openapi_document_describes_both_routes(client: Client, world: World) -> None:
    document = await (await _get(client, world, "/api/v1/openapi.json")).json()
    json_route = document["paths"]["/api/v1/ecg/{sop_instance_uid}"]["get"]
    schema = json_route["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/EcgOut"}
    assert json_route["parameters"][0]["name"] == "sop_instance_uid"
    svg_route = document["paths"]["/api/v1/ecg/{sop_instance_uid}.svg"]["get"]
    assert "image/svg+xml" in svg_route["responses"]["200"]["content"]
    parameters = {p["name"]: p for p in svg_route["parameters"]}
    assert set(parameters) == {"sop_instance_uid", "layout", "speed", "gain"}
    assert parameters["speed"]["schema"]["enum"] == [25, 50]
    lead = document["components"]["schemas"]["LeadOut"]
    assert lead["properties"]["samples"]["items"] == {"type": "integer"}
