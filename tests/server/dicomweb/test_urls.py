"""The DICOMweb URL builder: its paths, that the server answers each, and the absolute URLs sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from server.dicomweb import rendered, urls, wado
from server.settings import Settings
from tests.dicom_tools.part10 import SERIES_UID, SOP_INSTANCE_UID, STUDY_UID, dataset, part10
from tests.server.dicomweb.helpers import Client, stow
from tests.support import World

PUBLIC = "https://doorstep.example:8443"
INSTANCE = urls.instance(STUDY_UID, SERIES_UID, SOP_INSTANCE_UID)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Behind a proxy: the public URL is not the address the test client connects to."""
    return settings.model_copy(update={"public_url": PUBLIC + "/"})


def test_paths_of_a_study_series_and_instance() -> None:
    assert urls.studies() == "/dicom-web/studies"
    assert urls.study("1.2") == "/dicom-web/studies/1.2"
    assert urls.series("1.2", "1.3") == "/dicom-web/studies/1.2/series/1.3"
    assert urls.instance("1.2", "1.3", "1.4") == "/dicom-web/studies/1.2/series/1.3/instances/1.4"
    instance = urls.instance("1.2", "1.3", "1.4", root=PUBLIC + "/dicom-web")
    assert instance == f"{PUBLIC}/dicom-web/studies/1.2/series/1.3/instances/1.4"
    assert urls.metadata(instance) == instance + "/metadata"
    assert urls.thumbnail(urls.study("1.2")) == "/dicom-web/studies/1.2/thumbnail"
    assert urls.rendered(urls.frames(instance, "1,3")) == instance + "/frames/1,3/rendered"
    assert urls.bulk_data(instance, "00880200/0/7FE00010") == (
        instance + "/bulkdata/00880200/0/7FE00010"
    )


@pytest.mark.parametrize(
    ("url", "handler"),
    [
        (urls.study(STUDY_UID), wado.retrieve_instances),
        (urls.series(STUDY_UID, SERIES_UID), wado.retrieve_instances),
        (INSTANCE, wado.retrieve_instances),
        (urls.metadata(urls.study(STUDY_UID)), wado.retrieve_metadata),
        (urls.metadata(urls.series(STUDY_UID, SERIES_UID)), wado.retrieve_metadata),
        (urls.metadata(INSTANCE), wado.retrieve_metadata),
        (urls.frames(INSTANCE, "1,2"), wado.retrieve_frames),
        (urls.bulk_data(INSTANCE, "54000100/0/54001010"), wado.retrieve_bulk_data),
        (urls.rendered(INSTANCE), rendered.retrieve_rendered_instance),
        (urls.rendered(urls.frames(INSTANCE, "2")), rendered.retrieve_rendered_frames),
        (urls.thumbnail(urls.study(STUDY_UID)), rendered.retrieve_thumbnail),
        (urls.thumbnail(urls.series(STUDY_UID, SERIES_UID)), rendered.retrieve_thumbnail),
        (urls.thumbnail(INSTANCE), rendered.retrieve_thumbnail),
    ],
)
async def test_each_url_built_is_a_route_of_the_server(
    app: web.Application, url: str, handler: Callable[..., Any]
) -> None:
    match = await app.router.resolve(make_mocked_request("GET", url, app=app))
    assert match.handler is handler, url


async def test_retrieve_and_bulk_data_urls_are_absolute_under_the_public_url(
    client: Client, world: World
) -> None:
    root = PUBLIC + "/dicom-web"
    instance = urls.instance(STUDY_UID, SERIES_UID, SOP_INSTANCE_UID, root=root)
    response = await stow(client, world, "gp-a", [part10(dataset())], study=STUDY_UID)
    assert response.status == 200
    body = await response.json()
    assert body["00081190"]["Value"] == [urls.study(STUDY_UID, root=root)]
    (referenced,) = body["00081199"]["Value"]
    assert referenced["00081190"]["Value"] == [instance]

    auth = world.auth("gp-a")
    found = {}
    for level, path in [
        ("study", "/dicom-web/studies"),
        ("series", "/dicom-web/series"),
        ("instance", "/dicom-web/instances"),
    ]:
        (result,) = await (await client.get(path, headers=auth)).json()
        found[level] = result["00081190"]["Value"][0]
    assert found == {
        "study": urls.study(STUDY_UID, root=root),
        "series": urls.series(STUDY_UID, SERIES_UID, root=root),
        "instance": instance,
    }

    (document,) = await (await client.get(urls.metadata(INSTANCE), headers=auth)).json()
    assert document["7FE00010"]["BulkDataURI"] == urls.bulk_data(instance, "7FE00010")
