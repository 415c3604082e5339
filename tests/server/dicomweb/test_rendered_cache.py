"""Strong ETags, 304s and the rendered cache (memory and disk) of WADO-RS rendered resources.

Which tier served a request is read from the application's Prometheus counters
(``doorstep_rendered_cache_hits_total{tier}``, ``..._misses_total``), the ones /metrics shows.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from dicom_tools.rendering import Window, render_frame
from server import keys
from server.app import create_app
from server.dicomweb.lifetime import rendered_cache_root
from server.settings import Settings
from tests.dicom_tools.part10 import STUDY_UID
from tests.server.dicomweb.helpers import read_bundled, stow
from tests.server.dicomweb.test_rendered import _in_series, _url
from tests.support import Client, World, audit_events

PNG = {"Accept": "image/png"}
VARY = "Accept, Authorization, Cookie"  # media type, and whose credentials


async def _stored(client: Client, world: World, name: str, user: str = "gp-a") -> bytes:
    data = read_bundled(name)
    assert (await stow(client, world, user, [data])).status == 200
    return data


async def _get(
    client: Client, world: World, path: str, user: str = "gp-a", **headers: str
) -> tuple[ClientResponse, bytes]:
    response = await client.get(path, headers={**world.auth(user), **headers})
    return response, await response.read()


def _tag(response: ClientResponse) -> str:
    """The strong entity tag of a response, unquoted."""
    value = response.headers["ETag"]
    assert value[0] + value[-1] == '""', value  # strong: no W/ prefix
    return value[1:-1]


def _counter(client: Client, name: str, **labels: str) -> float:
    value = client.app[keys.METRICS].registry.get_sample_value(name, labels)
    return value or 0.0


def _tiers(client: Client) -> tuple[float, float, float]:
    """(memory hits, disk hits, misses) so far."""
    return (
        _counter(client, "doorstep_rendered_cache_hits_total", tier="memory"),
        _counter(client, "doorstep_rendered_cache_hits_total", tier="disk"),
        _counter(client, "doorstep_rendered_cache_misses_total"),
    )


@asynccontextmanager
async def _running(settings: Settings) -> AsyncIterator[Client]:
    """A fresh application process on these settings (same database and data directory)."""
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_etag_is_stable_and_differs_with_what_changes_the_bytes(
    client: Client, world: World
) -> None:
    ct = await _stored(client, world, "CT_small.dcm")
    rendered = _url(ct) + "/rendered"
    first, body = await _get(client, world, rendered, **PNG)
    again, body_again = await _get(client, world, rendered, **PNG)
    assert first.status == again.status == 200
    assert _tag(first) == _tag(again)
    assert body == body_again
    assert first.headers["Cache-Control"] == "private, max-age=3600"
    assert first.headers["Vary"] == VARY
    variants = {
        "jpeg": await _get(client, world, rendered),
        "window": await _get(client, world, rendered + "?window=40,400", **PNG),
        "function": await _get(client, world, rendered + "?window=40,400,sigmoid", **PNG),
        "viewport": await _get(client, world, rendered + "?viewport=64,64", **PNG),
        "thumbnail": await _get(client, world, _url(ct) + "/thumbnail?viewport=64,64", **PNG),
        "jpeg quality": await _get(client, world, rendered + "?quality=50"),
    }
    tags = {name: _tag(response) for name, (response, _) in variants.items()}
    # The same viewport makes the same bytes whether asked as rendered or as thumbnail.
    assert tags.pop("thumbnail") == tags["viewport"]
    assert len({_tag(first), *tags.values()}) == 1 + len(tags), tags
    assert variants["viewport"][1] == variants["thumbnail"][1]
    # Quality does not change a PNG: same tag, same bytes.
    png_quality, png_quality_body = await _get(client, world, rendered + "?quality=5", **PNG)
    assert (_tag(png_quality), png_quality_body) == (_tag(first), body)
    window = np.asarray(Image.open(io.BytesIO(variants["window"][1])))
    assert np.array_equal(window, render_frame(ct, window=Window(40.0, 400.0)))

    two = await _stored(client, world, "SC_rgb_rle_2frame.dcm")
    frame_1, _ = await _get(client, world, _url(two) + "/frames/1/rendered", **PNG)
    frame_2, _ = await _get(client, world, _url(two) + "/frames/2/rendered", **PNG)
    assert _tag(frame_1) != _tag(frame_2)


async def test_if_none_match_is_304_and_still_scoped_and_audited(
    client: Client, world: World
) -> None:
    ct = await _stored(client, world, "CT_small.dcm")
    rendered = _url(ct) + "/rendered"
    first, _ = await _get(client, world, rendered, **PNG)
    etag = first.headers["ETag"]
    before = len(await audit_events(client.app, "dicom.retrieve"))
    for header in (etag, f'W/"other", {etag}', f"W/{etag}", "*"):
        response, body = await _get(client, world, rendered, **PNG, **{"If-None-Match": header})
        assert (response.status, body) == (304, b""), header
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == "private, max-age=3600"
        assert response.headers["Vary"] == VARY
    # "*" holds only for what exists: an error stays an error.
    ecg = await _stored(client, world, "waveform_ecg.dcm")
    nothing, _ = await _get(client, world, _url(ecg) + "/rendered", **{"If-None-Match": "*"})
    missing, _ = await _get(client, world, _url(ct) + "/frames/2", **{"If-None-Match": "*"})
    assert (nothing.status, missing.status) == (422, 404)
    stale, body = await _get(client, world, rendered, **PNG, **{"If-None-Match": '"other"'})
    assert stale.status == 200
    assert body
    jpeg, _ = await _get(client, world, rendered, **{"If-None-Match": etag})
    assert jpeg.status == 200  # another media type is another representation
    other, _ = await _get(client, world, rendered, "gp-b", **PNG, **{"If-None-Match": etag})
    assert other.status == 404
    events = (await audit_events(client.app, "dicom.retrieve"))[before:]
    outcomes = [(e.actor, e.outcome, json.loads(e.details)["purpose"]) for e in events]
    assert outcomes == [
        *[("gp-a", "success", "rendered")] * 4,
        ("gp-a", "success", "rendered"),  # the ECG, refused: 422
        ("gp-a", "success", "frames"),  # no frame 2: 404
        *[("gp-a", "success", "rendered")] * 2,
        ("gp-b", "denied", "rendered"),
    ]


async def test_another_organisation_gets_404_even_when_the_image_is_cached(
    client: Client, world: World
) -> None:
    ct = await _stored(client, world, "CT_small.dcm")
    study = _url(ct).split("/series/")[0]
    paths = [_url(ct) + "/rendered", _url(ct) + "/thumbnail", study + "/thumbnail"]
    for path in paths:
        assert (await _get(client, world, path))[0].status == 200
    cached = _tiers(client)
    for path in paths:
        response, _ = await _get(client, world, path, "gp-b")
        assert response.status == 404, path
        assert "ETag" not in response.headers
    assert _tiers(client) == cached  # the cache was not even consulted
    # The same bytes stored by clinic B share the entry once B can see its own copy.
    assert (await stow(client, world, "gp-b", [ct])).status == 200
    shared, body = await _get(client, world, paths[0], "gp-b")
    assert shared.status == 200
    assert body
    memory, disk, misses = _tiers(client)
    assert (memory, disk, misses) == (cached[0] + 1, cached[1], cached[2])


async def test_study_thumbnail_follows_the_first_visible_image(
    client: Client, world: World
) -> None:
    ecg, ct, rgb = (
        _in_series("waveform_ecg.dcm", 1),
        _in_series("CT_small.dcm", 3),
        _in_series("examples_rgb_color.dcm", 2),
    )
    assert (await stow(client, world, "gp-a", [ecg, ct])).status == 200
    thumbnail = f"/dicom-web/studies/{STUDY_UID}/thumbnail"
    first, _ = await _get(client, world, thumbnail, **PNG)
    assert first.headers["Cache-Control"] == "private, max-age=60"
    ct_thumbnail, _ = await _get(client, world, _url(ct) + "/thumbnail", **PNG)
    assert _tag(first) == _tag(ct_thumbnail)
    refused, _ = await _get(client, world, _url(ecg) + "/thumbnail", **PNG)
    assert refused.status == 422  # remembered, and still a 422 with its reason
    assert (await refused.json())["error"]["details"] == {"reason": "no_pixel_data"}
    # A new first image changes the study's thumbnail, though the client holds the old tag.
    assert (await stow(client, world, "gp-a", [rgb])).status == 200
    changed, body = await _get(
        client, world, thumbnail, **PNG, **{"If-None-Match": f'"{_tag(first)}"'}
    )
    assert changed.status == 200
    assert _tag(changed) != _tag(first)
    assert Image.open(io.BytesIO(body)).mode == "RGB"


async def test_frames_and_bulk_data_are_immutable_with_strong_etags(
    client: Client, world: World
) -> None:
    two = await _stored(client, world, "SC_rgb_rle_2frame.dcm")
    frames = _url(two) + "/frames/1"
    octets = {"Accept": 'multipart/related; type="application/octet-stream"'}
    first, body = await _get(client, world, frames, **octets)
    again, body_again = await _get(client, world, frames, **octets)
    assert first.status == again.status == 200
    assert first.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert first.headers["Vary"] == VARY
    # Strong: the same bytes, multipart boundary included.
    assert _tag(first) == _tag(again)
    assert (first.headers["Content-Type"], body) == (again.headers["Content-Type"], body_again)
    not_modified, empty = await _get(
        client, world, frames, **octets, **{"If-None-Match": first.headers["ETag"]}
    )
    assert (not_modified.status, empty) == (304, b"")
    assert not_modified.headers["Cache-Control"] == first.headers["Cache-Control"]
    second, _ = await _get(client, world, _url(two) + "/frames/2", **octets)
    stored, _ = await _get(client, world, frames, Accept="*/*")  # RLE as stored
    assert "image/dicom-rle" in stored.headers["Content-Type"]
    assert len({_tag(first), _tag(second), _tag(stored)}) == 3

    ct = await _stored(client, world, "CT_small.dcm")
    metadata, _ = await _get(client, world, _url(ct) + "/metadata")
    uri = (await metadata.json())[0]["7FE00010"]["BulkDataURI"]
    bulk, _ = await _get(client, world, uri.split(str(client.make_url("")).rstrip("/"))[-1])
    assert bulk.status == 200, uri
    assert bulk.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    path = str(bulk.url.path)
    repeat, _ = await _get(client, world, path, **{"If-None-Match": bulk.headers["ETag"]})
    assert repeat.status == 304
    other, _ = await _get(client, world, path, "gp-b", **{"If-None-Match": bulk.headers["ETag"]})
    assert other.status == 404


async def test_replaceable_instances_are_revalidated(settings: Settings, world: World) -> None:
    async with _running(settings.model_copy(update={"archive_conflict": "replace"})) as client:
        two = await _stored(client, world, "SC_rgb_rle_2frame.dcm")
        for path in (_url(two) + "/frames/1", _url(two) + "/rendered"):
            response, _ = await _get(client, world, path)
            assert response.status == 200, path
            assert response.headers["Cache-Control"] == "private, no-cache", path


async def test_disk_cache_is_reused_after_a_restart(settings: Settings, world: World) -> None:
    async with _running(settings) as client:
        ct = await _stored(client, world, "CT_small.dcm")
        rendered = _url(ct) + "/rendered?window=40,400"
        first, body = await _get(client, world, rendered, **PNG)
        assert first.status == 200
        assert _tiers(client) == (0, 0, 1)
        assert (await _get(client, world, rendered, **PNG))[1] == body
        assert _tiers(client) == (1, 0, 1)
    async with _running(settings) as client:
        again, body_again = await _get(client, world, rendered, **PNG)
        assert (again.status, _tag(again), body_again) == (200, _tag(first), body)
        assert _tiers(client) == (0, 1, 0)  # from disk: nothing rendered in this process
        metrics = await (await client.get("/metrics", headers=world.auth("admin"))).text()
        assert 'doorstep_rendered_cache_hits_total{tier="disk"} 1.0' in metrics


async def test_a_damaged_disk_entry_is_rendered_again(settings: Settings, world: World) -> None:
    disk_only = settings.model_copy(update={"rendered_cache_memory_bytes": 0})
    async with _running(disk_only) as client:
        ct = await _stored(client, world, "CT_small.dcm")
        rendered = _url(ct) + "/rendered"
        first, body = await _get(client, world, rendered, **PNG)
        entry = client.app[keys.RENDERED_CACHE].disk
        assert entry is not None
        path = entry.path(_tag(first))
        whole = path.read_bytes()
        assert whole.endswith(body)
        path.write_bytes(whole[: len(whole) // 2])  # a truncated file
        again, body_again = await _get(client, world, rendered, **PNG)
        assert again.status == 200
        assert body_again == body
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(body_again))), render_frame(ct))
        assert _tiers(client) == (0, 0, 2)
        assert _counter(client, "doorstep_rendered_cache_corrupt_total") == 1
        assert path.read_bytes() == whole  # written again, whole
        assert (await _get(client, world, rendered, **PNG))[1] == body
        assert _tiers(client) == (0, 1, 2)
        # A partial file left by an interrupted write is removed at the next start.
        partial = path.with_name(path.name + ".0123456789abcdef.tmp")
        partial.write_bytes(whole[:10])
    async with _running(disk_only):
        assert not partial.exists()
        assert path.exists()


def _cached_bytes(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


async def test_the_disk_budget_is_respected(settings: Settings, world: World) -> None:
    budget = 20_000  # a CT_small PNG is 3 to 9 kB here: a few fit, not twenty
    bounded = settings.model_copy(
        update={"rendered_cache_memory_bytes": 0, "rendered_cache_disk_bytes": budget}
    )
    root = rendered_cache_root(settings.data_dir)
    async with _running(bounded) as client:
        ct = await _stored(client, world, "CT_small.dcm")
        rendered = _url(ct) + "/rendered"
        for center in range(0, 400, 20):
            response, _ = await _get(client, world, f"{rendered}?window={center},400", **PNG)
            assert response.status == 200
            count, total = _cached_bytes(root)
            assert total <= budget, (center, count, total)
        assert count >= 2
        assert _counter(client, "doorstep_rendered_cache_evictions_total", tier="disk") >= 10
        latest, _ = await _get(client, world, f"{rendered}?window=380,400", **PNG)
        assert latest.status == 200
        assert _tiers(client)[1] == 1  # the most recent entry is still on disk
    async with _running(bounded.model_copy(update={"rendered_cache_disk_bytes": 8_000})):
        count, total = _cached_bytes(root)  # a smaller budget at start evicts down to it
        assert count >= 1
        assert total <= 8_000


async def test_an_unwritable_cache_costs_a_render_not_a_failure(
    settings: Settings, world: World
) -> None:
    disk_only = settings.model_copy(update={"rendered_cache_memory_bytes": 0})
    root = rendered_cache_root(settings.data_dir)
    async with _running(disk_only) as client:
        for prefix in range(256):  # a file where each entry's folder would go
            (root / f"{prefix:02x}").write_bytes(b"")
        ct = await _stored(client, world, "CT_small.dcm")
        for _ in range(2):
            response, body = await _get(client, world, _url(ct) + "/rendered", **PNG)
            assert response.status == 200
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(body))), render_frame(ct))
        assert _tiers(client) == (0, 0, 2)
