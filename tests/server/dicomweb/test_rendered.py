"""WADO-RS rendered resources: rendered instances and frames, thumbnails, parameters, scoping."""

from __future__ import annotations

import io
import json

import numpy as np
import pydicom
import pytest
from PIL import Image

from dicom_tools.rendering import Viewport, Window, render, render_frame
from tests.dicom_tools.part10 import SERIES_UID, STUDY_UID, bundled
from tests.server.dicomweb.helpers import read_bundled, stow
from tests.support import Client, World, audit_events


def _url(data: bytes) -> str:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


async def _stored(client: Client, world: World, *names: str) -> list[bytes]:
    files = [read_bundled(name) for name in names]
    assert (await stow(client, world, "gp-a", files)).status == 200
    return files


async def _image(client: Client, world: World, path: str, accept: str = "") -> Image.Image:
    headers = {**world.auth("gp-a"), **({"Accept": accept} if accept else {})}
    response = await client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    image = Image.open(io.BytesIO(await response.read()))
    assert response.content_type == f"image/{str(image.format).lower()}"
    return image


async def test_rendered_is_jpeg_by_default_and_png_on_request(client: Client, world: World) -> None:
    (ct,) = await _stored(client, world, "CT_small.dcm")
    jpeg = await _image(client, world, _url(ct) + "/rendered")
    assert (jpeg.format, jpeg.mode, jpeg.size) == ("JPEG", "L", (128, 128))
    png = await _image(client, world, _url(ct) + "/rendered", "image/png")
    assert (png.format, png.mode, png.size) == ("PNG", "L", (128, 128))
    assert np.array_equal(np.asarray(png), render_frame(ct))
    preferred = await _image(client, world, _url(ct) + "/rendered", "image/png, image/jpeg;q=0.5")
    assert preferred.format == "PNG"
    assert (await _image(client, world, _url(ct) + "/rendered", "image/*")).format == "JPEG"


async def test_window_parameter_changes_the_pixels(client: Client, world: World) -> None:
    (ct,) = await _stored(client, world, "CT_small.dcm")
    rendered = _url(ct) + "/rendered"
    soft = await _image(client, world, rendered + "?window=40,400", "image/png")
    bone = await _image(client, world, rendered + "?window=300,1500,linear", "image/png")
    assert np.array_equal(np.asarray(soft), render_frame(ct, window=Window(40, 400)))
    assert not np.array_equal(np.asarray(soft), np.asarray(bone))
    sigmoid = await _image(client, world, rendered + "?window=40,400,sigmoid", "image/png")
    expected = render_frame(ct, window=Window(40, 400, "sigmoid"))
    assert np.array_equal(np.asarray(sigmoid), expected)
    exact = await _image(client, world, rendered + "?window=40,400,linear-exact", "image/png")
    assert np.array_equal(
        np.asarray(exact), render_frame(ct, window=Window(40, 400, "linear_exact"))
    )


async def test_viewport_quality_and_thumbnail_bound_the_size(client: Client, world: World) -> None:
    (rgb,) = await _stored(client, world, "examples_rgb_color.dcm")
    url = _url(rgb)
    full = await _image(client, world, url + "/rendered")
    assert (full.mode, full.size) == ("RGB", (320, 240))
    assert (await _image(client, world, url + "/rendered?viewport=160,160")).size == (160, 120)
    thumbnail = await _image(client, world, url + "/thumbnail")
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (128, 96))
    small = await _image(client, world, url + "/thumbnail?viewport=64,64", "image/png")
    assert (small.format, small.size) == ("PNG", (64, 48))
    low = await client.get(url + "/rendered?quality=5", headers=world.auth("gp-a"))
    high = await client.get(url + "/rendered?quality=95", headers=world.auth("gp-a"))
    assert len(await low.read()) < len(await high.read())


async def test_frames_rendered_picks_one_frame(client: Client, world: World) -> None:
    (two,) = await _stored(client, world, "SC_rgb_rle_2frame.dcm")
    url = _url(two)
    second = await _image(client, world, url + "/frames/2/rendered", "image/png")
    assert np.array_equal(np.asarray(second), render_frame(two, frame=2))
    for path, status in [
        (url + "/frames/3/rendered", 404),
        (url + "/frames/0/rendered", 404),
        (url + "/frames/1,2/rendered", 406),
        (url + "/frames/one/rendered", 400),
    ]:
        response = await client.get(path, headers=world.auth("gp-a"))
        assert response.status == status, path


@pytest.mark.parametrize(
    "query",
    [
        "window=abc",
        "window=40",
        "window=40,0",
        "window=40,400,cubic",
        "window=nan,400",
        "viewport=0,10",
        "viewport=10",
        "viewport=10,10,0,0,5,5",
        "viewport=99999,10",
        "quality=0",
        "quality=high",
    ],
)
async def test_malformed_parameters_are_400(client: Client, world: World, query: str) -> None:
    (ct,) = await _stored(client, world, "CT_small.dcm")
    response = await client.get(f"{_url(ct)}/rendered?{query}", headers=world.auth("gp-a"))
    assert response.status == 400, query
    assert (await response.json())["error"]["code"] == "malformed"


async def test_unsupported_accept_is_406(client: Client, world: World) -> None:
    (ct,) = await _stored(client, world, "CT_small.dcm")
    for accept in ["image/gif", "application/dicom", 'multipart/related; type="image/jpeg"']:
        response = await client.get(
            _url(ct) + "/rendered", headers={**world.auth("gp-a"), "Accept": accept}
        )
        assert response.status == 406, accept
        assert (await response.json())["error"]["code"] == "not_acceptable"


async def test_an_ecg_has_no_image_to_render(client: Client, world: World) -> None:
    (ecg,) = await _stored(client, world, "waveform_ecg.dcm")
    for resource in ("/rendered", "/thumbnail", "/frames/1/rendered"):
        response = await client.get(_url(ecg) + resource, headers=world.auth("gp-a"))
        assert response.status == 422, resource
        error = (await response.json())["error"]
        assert error["code"] == "not_renderable"
        assert error["details"] == {"reason": "no_pixel_data"}
        assert "12-lead ECG Waveform Storage has no pixel data" in error["message"]


def _in_series(name: str, number: int) -> bytes:
    """A bundled file moved into one test study and series as instance ``number``."""
    ds = pydicom.dcmread(bundled(name))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = STUDY_UID, SERIES_UID, number
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def test_study_and_series_thumbnails_show_the_first_image(
    client: Client, world: World
) -> None:
    ecg, rgb = _in_series("waveform_ecg.dcm", 1), _in_series("examples_rgb_color.dcm", 2)
    assert (await stow(client, world, "gp-a", [ecg, rgb])).status == 200
    study = f"/dicom-web/studies/{STUDY_UID}"
    expected = np.asarray(
        Image.open(io.BytesIO(render(rgb, viewport=Viewport(128, 128), image_format="png")))
    )
    for path in (study + "/thumbnail", f"{study}/series/{SERIES_UID}/thumbnail"):
        thumbnail = await _image(client, world, path, "image/png")
        assert np.array_equal(np.asarray(thumbnail), expected), path
    response = await client.get(_url(ecg) + "/thumbnail", headers=world.auth("gp-a"))
    assert response.status == 422


async def test_another_clinic_gets_404_and_the_attempt_is_audited(
    client: Client, world: World
) -> None:
    (ct,) = await _stored(client, world, "CT_small.dcm")
    study = _url(ct).split("/series/")[0]
    paths = [_url(ct) + r for r in ("/rendered", "/frames/1/rendered", "/thumbnail")]
    paths.append(study + "/thumbnail")
    for path in paths:
        response = await client.get(path, headers=world.auth("gp-b"))
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"
        assert (await client.get(path, headers=world.auth("kiosk"))).status == 403, path
        assert (await client.get(path)).status == 401, path
    await _image(client, world, paths[2])
    events = await audit_events(client.app, "dicom.retrieve")
    outcomes = [(e.actor, e.outcome, json.loads(e.details)["purpose"]) for e in events]
    assert outcomes == [
        ("gp-b", "denied", "rendered"),
        ("gp-b", "denied", "rendered"),
        ("gp-b", "denied", "thumbnail"),
        ("gp-b", "denied", "thumbnail"),
        ("gp-a", "success", "thumbnail"),
    ]
    assert {e.org_id for e in events} == {world.orgs["clinic-a"]}
