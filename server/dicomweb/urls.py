"""URLs of the DICOMweb resources (PS3.18 10.4): the one place their paths are spelled.

Each URL hangs from a root. The default, ``PREFIX``, gives a path on this server,
for links in its own pages. Responses give absolute URLs — RetrieveURL (0008,1190)
and BulkDataURI are URLs a client follows as they are (PS3.18 10.5, Annex F) — from
the root ``paths.base_url(request)``. The routes are built by the same functions
with ``{placeholder}`` UIDs, so a URL made here is always one the server answers.
"""

from __future__ import annotations

from server.dicomweb.paths import PREFIX


def studies(*, root: str = PREFIX) -> str:
    """The studies of the archive: where STOW-RS stores and QIDO-RS searches."""
    return f"{root}/studies"


def study(study_uid: str, *, root: str = PREFIX) -> str:
    """A study."""
    return f"{studies(root=root)}/{study_uid}"


def series(study_uid: str, series_uid: str, *, root: str = PREFIX) -> str:
    """A series of a study."""
    return f"{study(study_uid, root=root)}/series/{series_uid}"


def instance(study_uid: str, series_uid: str, sop_instance_uid: str, *, root: str = PREFIX) -> str:
    """An instance of a series."""
    return f"{series(study_uid, series_uid, root=root)}/instances/{sop_instance_uid}"


def metadata(resource: str) -> str:
    """The DICOM JSON metadata of a study, series or instance URL."""
    return f"{resource}/metadata"


def thumbnail(resource: str) -> str:
    """The thumbnail of a study, series or instance URL."""
    return f"{resource}/thumbnail"


def rendered(resource: str) -> str:
    """The rendered image of an instance URL or of a frames URL."""
    return f"{resource}/rendered"


def frames(instance_url: str, frame_list: str) -> str:
    """Frames of an instance URL; ``frame_list`` is frame numbers from 1 separated by commas."""
    return f"{instance_url}/frames/{frame_list}"


def bulk_data(instance_url: str, path: str) -> str:
    """The bulk data of an instance URL at a path of dicom_tools.dicomjson (``7FE00010``...)."""
    return f"{instance_url}/bulkdata/{path}"
