"""Routes of DICOMweb (PS3.18): STOW-RS, QIDO-RS and WADO-RS under /dicom-web."""

from __future__ import annotations

from aiohttp import web

from server.dicomweb import export, qido, rendered, stow, urls, wado
from server.dicomweb.paths import PREFIX

_STUDIES = urls.studies()
_STUDY = urls.study("{study}")
_SERIES = urls.series("{study}", "{series}")
_INSTANCE = urls.instance("{study}", "{series}", "{instance}")
_FRAMES = urls.frames(_INSTANCE, "{frames}")


def setup(app: web.Application) -> None:
    """Register the DICOMweb resources."""
    router = app.router
    router.add_post(_STUDIES, stow.store_instances)
    router.add_get(_STUDIES, qido.search_for_studies)
    router.add_get(PREFIX + "/series", qido.search_for_series)
    router.add_get(PREFIX + "/instances", qido.search_for_instances)
    router.add_post(_STUDY, stow.store_instances)
    router.add_get(_STUDY, wado.retrieve_instances)
    router.add_get(urls.metadata(_STUDY), wado.retrieve_metadata)
    router.add_get(urls.thumbnail(_STUDY), rendered.retrieve_thumbnail)
    router.add_get(_STUDY + "/export", export.export_study)
    router.add_get(_STUDY + "/series", qido.search_for_series)
    router.add_get(_STUDY + "/instances", qido.search_for_instances)
    router.add_get(_SERIES, wado.retrieve_instances)
    router.add_get(urls.metadata(_SERIES), wado.retrieve_metadata)
    router.add_get(urls.thumbnail(_SERIES), rendered.retrieve_thumbnail)
    router.add_get(_SERIES + "/instances", qido.search_for_instances)
    router.add_get(_INSTANCE, wado.retrieve_instances)
    router.add_get(urls.metadata(_INSTANCE), wado.retrieve_metadata)
    router.add_get(_FRAMES, wado.retrieve_frames)
    router.add_get(urls.rendered(_INSTANCE), rendered.retrieve_rendered_instance)
    router.add_get(urls.rendered(_FRAMES), rendered.retrieve_rendered_frames)
    router.add_get(urls.thumbnail(_INSTANCE), rendered.retrieve_thumbnail)
    router.add_get(urls.bulk_data(_INSTANCE, "{path:.+}"), wado.retrieve_bulk_data)
