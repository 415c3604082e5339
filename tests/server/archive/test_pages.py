"""GP study browser: the clinic's studies with thumbnails, study detail with series, scoping."""

from __future__ import annotations

import html as htmllib

import pytest

from tests.dicom_tools.part10 import SERIES_UID, SOP_INSTANCE_UID, STUDY_UID, dataset, part10
from tests.forms import sign_in
from tests.server.dicomweb.helpers import stow
from tests.support import Client, World


def instance(
    n: int, *, series: str = SERIES_UID, modality: bytes = b"CT", name: bytes = b"Doe^Jane"
) -> bytes:
    """A CT (or other modality) instance of the test study."""
    uid = f"{SOP_INSTANCE_UID}.{n}"
    body = dataset(
        replace={
            0x00080018: uid.encode(),
            0x0020000E: series.encode(),
            0x00080060: modality,
            0x00100010: name,
        },
        extra={
            0x00081030: ("LO", b"Chest <b>CT</b>"),
            0x0008103E: ("LO", f"Series {series[-1]}".encode()),
        },
    )
    return part10(body, sop_instance_uid=uid)


async def _stow(client: Client, world: World, user: str, parts: list[bytes]) -> None:
    response = await stow(client, world, user, parts)
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("username", ["kiosk", "cardio", "admin"])
async def test_only_gps_browse_studies(client: Client, world: World, username: str) -> None:
    await sign_in(client, username)
    assert (await client.get("/studies")).status == 403
    assert (await client.get(f"/studies/{STUDY_UID}")).status == 403


async def test_empty_list(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    html = await (await client.get("/studies")).text()
    assert "No studies yet." in html
    assert 'href="/studies" aria-current="page"' in html


async def test_list_and_detail(client: Client, world: World) -> None:
    series2 = SERIES_UID + ".2"
    await _stow(
        client,
        world,
        "gp-a",
        [instance(1), instance(2), instance(3, series=series2, modality=b"SR")],
    )
    await _stow(client, world, "gp-b", [part10(dataset(replace={0x00100010: b"Other^Clinic"}))])
    await sign_in(client, "gp-a")
    response = await client.get("/studies")
    assert response.status == 200
    html = await response.text()
    assert "1 study" in html
    assert "DOE, Jane" in html
    assert "P-0001" in html
    assert "31 Jan 2024" in html
    assert "CT, SR" in html
    assert "Chest &lt;b&gt;CT&lt;/b&gt;" in html
    assert "Other" not in html
    assert f'href="/studies/{STUDY_UID}"' in html
    thumb = (
        f"/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}"
        f"/instances/{SOP_INSTANCE_UID}.1/thumbnail"
    )
    assert f'src="{thumb}"' in html
    assert 'loading="lazy"' in html
    assert 'alt="Thumbnail of DOE, Jane' in htmllib.unescape(html)
    cells = [
        c for c in html.split("<td") if 'data-label="Series"' in c or 'data-label="Instances"' in c
    ]
    assert [c.split(">")[1].split("<")[0] for c in cells] == ["2", "3"]

    detail = await client.get(f"/studies/{STUDY_UID}")
    assert detail.status == 200
    html = await detail.text()
    assert "<h1>DOE, Jane</h1>" in html
    assert "<title>Study of DOE, Jane · Doorstep</title>" in html
    assert "<dd>31 Jan 2024</dd>" in html
    assert "<div><dt>Date of birth</dt><dd>—</dd></div>" in html  # none in the instances
    assert "<div><dt>Sex</dt><dd>—</dd></div>" in html
    assert "3 in 2 series" in html
    assert "Series 3" in html
    assert "Series 2" in html
    assert f"/series/{series2}/instances/{SOP_INSTANCE_UID}.3/thumbnail" in html
    assert html.count('class="thumb"') == 2
    assert ">SR<" in html


async def test_another_clinics_study_is_not_found(client: Client, world: World) -> None:
    await _stow(client, world, "gp-b", [instance(1)])
    await sign_in(client, "gp-a")
    response = await client.get(f"/studies/{STUDY_UID}")
    assert response.status == 404
    assert STUDY_UID in await response.text()
    assert "Doe" not in await response.text()
    assert "DOE" not in await response.text()
    assert (await client.get("/studies/1..2")).status == 404
    assert (await client.get("/studies/1.2.3.4")).status == 404
