"""The archive's service layer, as other features import it (``service as archive``).

The running application's :class:`Archive` (``app[keys.ARCHIVE]``) stores;
searching and locating live in :mod:`server.archive.queries`, storing in
:mod:`server.archive.staging` (validate, stage) and :mod:`server.archive.storing`
(publish, index); this module is the one interface to them.
"""

from server.archive.archive import Archive
from server.archive.queries import (
    InstanceMatch,
    Reader,
    SeriesMatch,
    StoredInstance,
    StudyMatch,
    StudySeries,
    first_instances,
    locate_instance,
    locate_instances,
    organisation_reader,
    principal_reader,
    search_instances,
    search_series,
    search_studies,
    study_series,
    visible_studies,
)
from server.archive.staging import (
    ConflictPolicy,
    Outcome,
    StoreResult,
)

__all__ = [
    "Archive",
    "ConflictPolicy",
    "InstanceMatch",
    "Outcome",
    "Reader",
    "SeriesMatch",
    "StoreResult",
    "StoredInstance",
    "StudyMatch",
    "StudySeries",
    "first_instances",
    "locate_instance",
    "locate_instances",
    "organisation_reader",
    "principal_reader",
    "search_instances",
    "search_series",
    "search_studies",
    "study_series",
    "visible_studies",
]
