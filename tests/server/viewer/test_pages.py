"""The viewer page: who may open it, what it carries for the browser, ECG series, scoping."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pydicom
import pytest
from pydicom.pixels import pixel_array

from server.package_data import web_dir
from tests.dicom_tools.part10 import SERIES_UID, STUDY_UID, bundled
from tests.forms import sign_in
from tests.server.dicomweb.helpers import parts_of, stow
from tests.support import Client, World, audit_events

VIEW = f"/studies/{STUDY_UID}/view"
ECG_SERIES = SERIES_UID + ".9"


def _in_series(name: str, number: int, series: str = SERIES_UID) -> bytes:
    """A bundled file moved into the test study, in a series, as instance ``number``."""
    ds = pydicom.dcmread(bundled(name))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = STUDY_UID, series, number
    ds.SeriesNumber = 9 if series == ECG_SERIES else 1
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def _store(client: Client, world: World, user: str = "gp-a") -> dict[str, str]:
    files = {
        "ct": _in_series("CT_small.dcm", 1),
        "ecg": _in_series("waveform_ecg.dcm", 1, ECG_SERIES),
    }
    response = await stow(client, world, user, list(files.values()))
    assert response.status == 200, await response.text()
    return {k: pydicom.dcmread(io.BytesIO(v)).SOPInstanceUID for k, v in files.items()}


async def test_the_owner_gp_opens_the_viewer(client: Client, world: World) -> None:
    uids = await _store(client, world)
    await sign_in(client, "gp-a")
    detail = await (await client.get(f"/studies/{STUDY_UID}")).text()
    assert f'href="{VIEW}">Open viewer</a>' in detail
    assert f'href="{VIEW}?series={SERIES_UID}"' in detail
    response = await client.get(VIEW)
    assert response.status == 200
    html = await response.text()
    series_url = f"/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}"
    assert 'data-module="viewer"' in html
    assert f'data-series-url="{series_url}"' in html
    assert '<canvas class="viewer-canvas"' in html
    # Thumbnails first: the strip precedes the viewport, and an ECG series has no image.
    assert html.index('class="viewer-series"') < html.index('data-module="viewer"')
    assert f'src="{series_url}/instances/{uids["ct"]}/thumbnail"' in html
    assert f"/instances/{uids['ecg']}/thumbnail" not in html
    assert html.count('class="viewer-series-link"') == 2
    assert re.search(rf'href="{VIEW}\?series={SERIES_UID}" aria-current="true"', html)
    assert "COMPRESSEDSAMPLES, CT1" in html  # the overlay's patient
    assert 'aria-live="polite"' in html
    assert "Keyboard shortcuts" in html
    assert "<script>" not in html
    assert " style=" not in html


async def test_an_ecg_series_shows_the_ecg_section(client: Client, world: World) -> None:
    uids = await _store(client, world)
    await sign_in(client, "gp-a")
    response = await client.get(f"{VIEW}?series={ECG_SERIES}")
    assert response.status == 200
    html = await response.text()
    ecg = f"/api/v1/ecg/{uids['ecg']}"
    # The markup of the shared interface, started as the ecg-viewer component.
    assert (
        f'<section class="ecg-viewer" data-module="ecg-viewer" data-ecg-url="{ecg}" '
        f'data-svg-url="{ecg}.svg">'
    ) in html
    assert f'<img class="ecg-paper" src="{ecg}.svg" alt="12-lead ECG">' in html
    assert 'data-module="viewer"' not in html
    assert "<canvas" not in html
    # The default is the first image series, never the ECG.
    assert 'data-module="viewer"' in await (await client.get(VIEW)).text()


async def test_an_ecg_only_study_opens_on_its_ecg(client: Client, world: World) -> None:
    ecg = _in_series("waveform_ecg.dcm", 1, ECG_SERIES)
    assert (await stow(client, world, "gp-a", [ecg])).status == 200
    await sign_in(client, "gp-a")
    html = await (await client.get(VIEW)).text()
    assert '<section class="ecg-viewer"' in html


async def test_another_clinic_gets_404_and_the_attempt_is_audited(
    client: Client, world: World
) -> None:
    await _store(client, world)
    await sign_in(client, "gp-b")
    response = await client.get(VIEW)
    assert response.status == 404
    text = await response.text()
    assert STUDY_UID in text
    assert "COMPRESSED" not in text.upper()
    denied = [e for e in await audit_events(client.app, "dicom.search") if e.outcome == "denied"]
    assert [(e.actor, e.object_id, e.org_id) for e in denied] == [
        ("gp-b", STUDY_UID, world.orgs["clinic-a"])
    ]
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-a")
    assert (await client.get(f"{VIEW}?series=1.2.3.4")).status == 404
    assert (await client.get(f"{VIEW}?series=not-a-uid")).status == 404
    assert (await client.get("/studies/1.2.3.4/view")).status == 404
    assert (await client.get("/studies/1..2/view")).status == 404


async def test_anonymous_callers_are_sent_to_sign_in(client: Client, world: World) -> None:
    await _store(client, world)
    response = await client.get(VIEW, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"/login?next={VIEW}"


@pytest.mark.parametrize("username", ["kiosk", "admin"])
async def test_only_clinicians_open_the_viewer(client: Client, world: World, username: str) -> None:
    await _store(client, world)
    await sign_in(client, username)
    assert (await client.get(VIEW)).status == 403


async def test_a_specialist_opens_only_a_study_asked_to_be_read(
    client: Client, world: World
) -> None:
    await _store(client, world)
    await sign_in(client, "cardio")
    assert (await client.get(VIEW)).status == 404


def _frame_accept() -> str:
    """The Accept header the viewer sends for frames (web/static/viewer/frames.mjs)."""
    source = (web_dir() / "static" / "viewer" / "frames.mjs").read_text()
    found = re.search(r"FRAME_ACCEPT =\s*'([^']+)'", source)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    ("name", "samples"),
    [("SC_rgb_jpeg_dcmtk.dcm", 3), ("CT_small.dcm", 1), ("MR_small_RLE.dcm", 1)],
)
async def test_the_viewers_frames_are_native_little_endian(
    client: Client, world: World, name: str, samples: int
) -> None:
    data = _in_series(name, 1)
    assert (await stow(client, world, "gp-a", [data])).status == 200
    ds = pydicom.dcmread(io.BytesIO(data))
    series = f"/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}"
    url = f"{series}/instances/{ds.SOPInstanceUID}/frames/1"
    headers = {**world.auth("gp-a"), "Accept": _frame_accept()}
    response = await client.get(url, headers=headers)
    assert response.status == 200, await response.text()
    ((content_type, body),) = parts_of(await response.read(), response.headers["Content-Type"])
    assert content_type.replace('"', "") == (
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    )
    expected = pixel_array(ds, index=0, as_rgb=True)  # YBR_FULL JPEG arrives as RGB
    assert len(body) == ds.Rows * ds.Columns * samples * expected.dtype.itemsize
    decoded = np.frombuffer(body, dtype=expected.dtype.newbyteorder("<")).reshape(expected.shape)
    assert np.array_equal(decoded, expected)
    # What the brief first proposed, transfer-syntax=*, sends compressed frames as stored.
    star = {
        **headers,
        "Accept": f"{_frame_accept().split('; transfer-syntax=')[0]}; transfer-syntax=*",
    }
    stored = await client.get(url, headers=star)
    stored_type = parts_of(await stored.read(), stored.headers["Content-Type"])[0][0]
    assert stored_type.replace('"', "").endswith(f"={ds.file_meta.TransferSyntaxUID}")


async def test_audit_of_a_viewer_page_is_a_search(client: Client, world: World) -> None:
    await _store(client, world)
    await sign_in(client, "gp-a")
    assert (await client.get(VIEW)).status == 200
    events = [e for e in await audit_events(client.app, "dicom.search") if e.actor == "gp-a"]
    assert {json.loads(e.details)["keys"].get("SOPClassUID", "") != "" for e in events} == {
        True,
        False,
    }
    assert {e.outcome for e in events} == {"success"}


_IMPORT = re.compile(r'''^\s*(?:import|export)\b[^"';]*?from\s+"(\./[\w-]+\.mjs)"''', re.MULTILINE)


def _module_graph(entry: str) -> set[str]:
    """The /static URLs of a module and every module it imports from its own folder."""
    folder, name = entry.split("/")
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        source = (web_dir() / "static" / folder / current).read_text()
        todo += [found.removeprefix("./") for found in _IMPORT.findall(source)]
    return {f"/static/{folder}/{module}" for module in seen}


@pytest.mark.parametrize(
    ("series", "entry"), [(None, "viewer/viewer.mjs"), (ECG_SERIES, "ecg/ecg-viewer.mjs")]
)
async def test_the_page_preloads_exactly_its_viewers_modules(
    client: Client, world: World, series: str | None, entry: str
) -> None:
    await _store(client, world)
    await sign_in(client, "gp-a")
    html = await (await client.get(VIEW + (f"?series={series}" if series else ""))).text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', html))
    assert preloaded == _module_graph(entry)
