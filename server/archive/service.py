"""The archive's service layer, as other features import it (``service as archive``).

Storing lives in :mod:`server.archive.storing`, searching and locating in
:mod:`server.archive.queries`; this module is the one interface to both.
"""

from server.archive.queries import (
    InstanceMatch,
    Reader,
    SeriesMatch,
    StoredInstance,
    StudyMatch,
    locate_instances,
    organisation_reader,
    principal_reader,
    search_instances,
    search_series,
    search_studies,
    visible_studies,
)
from server.archive.storing import (
    ConflictPolicy,
    Outcome,
    StoreResult,
    store_instances,
)

__all__ = [
    "ConflictPolicy",
    "InstanceMatch",
    "Outcome",
    "Reader",
    "SeriesMatch",
    "StoreResult",
    "StoredInstance",
    "StudyMatch",
    "locate_instances",
    "organisation_reader",
    "principal_reader",
    "search_instances",
    "search_series",
    "search_studies",
    "store_instances",
    "visible_studies",
]
