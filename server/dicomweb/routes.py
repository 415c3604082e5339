"""Routes of DICOMweb (PS3.18): STOW-RS, QIDO-RS and WADO-RS under /dicom-web."""

from __future__ import annotations

from aiohttp import web

from server.dicomweb import export, qido, rendered, stow, wado
from server.dicomweb.paths import PREFIX

_STUDY = PREFIX + "/studies/{study}"
_SERIES = _STUDY + "/series/{series}"
_INSTANCE = _SERIES + "/instances/{instance}"


def setup(app: web.Application) -> None:
    """Register the DICOMweb resources."""
    router = app.router
    router.add_post(PREFIX + "/studies", stow.store_instances)
    router.add_get(PREFIX + "/studies", qido.search_for_studies)
    router.add_get(PREFIX + "/series", qido.search_for_series)
    router.add_get(PREFIX + "/instances", qido.search_for_instances)
    router.add_post(_STUDY, stow.store_instances)
    router.add_get(_STUDY, wado.retrieve_instances)
    router.add_get(_STUDY + "/metadata", wado.retrieve_metadata)
    router.add_get(_STUDY + "/thumbnail", rendered.retrieve_thumbnail)
    router.add_get(_STUDY + "/export", export.export_study)
    router.add_get(_STUDY + "/series", qido.search_for_series)
    router.add_get(_STUDY + "/instances", qido.search_for_instances)
    router.add_get(_SERIES, wado.retrieve_instances)
    router.add_get(_SERIES + "/metadata", wado.retrieve_metadata)
    router.add_get(_SERIES + "/thumbnail", rendered.retrieve_thumbnail)
    router.add_get(_SERIES + "/instances", qido.search_for_instances)
    router.add_get(_INSTANCE, wado.retrieve_instances)
    router.add_get(_INSTANCE + "/metadata", wado.retrieve_metadata)
    router.add_get(_INSTANCE + "/frames/{frames}", wado.retrieve_frames)
    router.add_get(_INSTANCE + "/rendered", rendered.retrieve_rendered_instance)
    router.add_get(_INSTANCE + "/frames/{frames}/rendered", rendered.retrieve_rendered_frames)
    router.add_get(_INSTANCE + "/thumbnail", rendered.retrieve_thumbnail)
    router.add_get(_INSTANCE + "/bulkdata/{path:.+}", wado.retrieve_bulk_data)
