"""Search and locate DICOM instances, always within what the reader may see.

Every search and retrieval is an audit event; an attempt on a study the reader
may not see is recorded as denied (another organisation holds it) or failed
(nobody does), and looks to the reader exactly like a study that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.scope import readable_organisations
from server.archive import matching
from server.archive.models import Instance, Series, Study
from server.audit.service import DENIED, FAILURE, Recorder
from server.consults.models import Consult, ConsultStatus, ConsultStudy
from server.identity import Principal, Role
from server.reading.models import ReadingRequest, Status


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """Where a visible instance's bytes are and what they are."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class StudyMatch:
    """A study that matched a query, with its series/instance counts and modalities."""

    study: Study
    number_of_series: int
    number_of_instances: int
    modalities: tuple[str, ...]
    sop_classes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SeriesMatch:
    """A series that matched a query, with its study and instance count."""

    study: Study
    series: Series
    number_of_instances: int


@dataclass(frozen=True, slots=True)
class InstanceMatch:
    """An instance that matched a query, with its series and study."""

    study: Study
    series: Series
    instance: Instance


STUDY_READERS = (Role.GP, Role.SPECIALIST)
"""The roles that read their own organisation's studies (see `server.accounts.scope`)."""


CONSULTED = (ConsultStatus.ACCEPTED.value, ConsultStatus.LIVE.value, ConsultStatus.ENDED.value)
"""Statuses of a consult whose specialist sees its attached studies."""


def visible_studies(caller: Principal) -> ColumnElement[bool]:
    """SQL condition on Study: what this caller may see.

    Their own organisation's studies (an administrator's only under break-glass) and,
    for a specialist, the studies a clinic asked one of their specialties to read (the
    reading request, and only the request, opens a study to its specialty's readers) and
    the studies attached to a consult they accepted.
    """
    own = readable_organisations(caller, Study.org_id, roles=STUDY_READERS)
    if caller.role is not Role.SPECIALIST:
        return own
    requested = select(ReadingRequest.study_id).where(
        ReadingRequest.specialty.in_(caller.specialties),
        ReadingRequest.status != Status.CANCELLED.value,
    )
    consulted = (
        select(ConsultStudy.study_id)
        .join(Consult, Consult.id == ConsultStudy.consult_id)
        .where(Consult.specialist_id == caller.user_id, Consult.status.in_(CONSULTED))
    )
    return or_(own, Study.id.in_(requested), Study.id.in_(consulted))


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads the archive: the studies they see, and how their reading is audited.

    `org_id` is the organisation the events are recorded under; `audit` records them
    as the reader's actor.
    """

    org_id: int
    visible: ColumnElement[bool]
    audit: Recorder


def principal_reader(caller: Principal, audit: Recorder) -> Reader:
    """A signed-in user or API token reading the archive."""
    return Reader(caller.org_id, visible_studies(caller), audit)


def organisation_reader(org_id: int, audit: Recorder) -> Reader:
    """A DICOM peer whose calling AE title belongs to org_id: that organisation's studies."""
    return Reader(org_id, Study.org_id == org_id, audit)


# Searching --------------------------------------------------------------------


async def search_studies(
    *,
    session: AsyncSession,
    reader: Reader,
    keys: Mapping[str, str],
    fuzzy: bool,
    limit: int,
    offset: int,
) -> list[StudyMatch]:
    """Visible studies matching the keys, newest study date first."""
    where = matching.conditions("study", keys, fuzzy=fuzzy, dialect=_dialect(session))
    studies = (
        await session.scalars(
            select(Study)
            .where(reader.visible, *where)
            .order_by(Study.study_date.desc(), Study.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    ids = [s.id for s in studies]
    series: dict[int, list[str | None]] = {}
    for study_id, modality in await session.execute(
        select(Series.study_id, Series.modality).where(Series.study_id.in_(ids))
    ):
        series.setdefault(study_id, []).append(modality)
    counts: dict[int, int] = {}
    classes: dict[int, set[str]] = {}
    for study_id, sop_class, count in await session.execute(
        select(Instance.study_id, Instance.sop_class_uid, func.count())
        .where(Instance.study_id.in_(ids))
        .group_by(Instance.study_id, Instance.sop_class_uid)
    ):
        counts[study_id] = counts.get(study_id, 0) + count
        classes.setdefault(study_id, set()).add(sop_class)
    _record_search(session, reader, "study", None, keys, len(studies))
    return [
        StudyMatch(
            study=s,
            number_of_series=len(series.get(s.id, [])),
            number_of_instances=counts.get(s.id, 0),
            modalities=tuple(sorted({m for m in series.get(s.id, []) if m})),
            sop_classes=tuple(sorted(classes.get(s.id, set()))),
        )
        for s in studies
    ]


async def search_series(
    *,
    session: AsyncSession,
    reader: Reader,
    study_uid: str | None,
    keys: Mapping[str, str],
    fuzzy: bool,
    limit: int,
    offset: int,
) -> list[SeriesMatch] | None:
    """Visible series matching the keys (in one study when given); None if it is not visible."""
    where = matching.conditions("series", keys, fuzzy=fuzzy, dialect=_dialect(session))
    if study_uid is not None:
        if not await _scope_visible(session, reader, "dicom.search", study_uid):
            return None
        where.append(Study.study_uid == study_uid)
    rows = (
        await session.execute(
            select(Study, Series)
            .join(Series, Series.study_id == Study.id)
            .where(reader.visible, *where)
            .order_by(Study.id, Series.series_number, Series.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    ids = [series.id for _, series in rows]
    counts = {
        series_id: count
        for series_id, count in await session.execute(
            select(Instance.series_id, func.count())
            .where(Instance.series_id.in_(ids))
            .group_by(Instance.series_id)
        )
    }
    _record_search(session, reader, "series", study_uid, keys, len(rows))
    return [SeriesMatch(study, series, counts.get(series.id, 0)) for study, series in rows]


async def search_instances(
    *,
    session: AsyncSession,
    reader: Reader,
    study_uid: str | None,
    series_uid: str | None,
    keys: Mapping[str, str],
    fuzzy: bool,
    limit: int,
    offset: int,
) -> list[InstanceMatch] | None:
    """Visible instances matching the keys (in one study/series when given); None if not visible."""
    where = matching.conditions("instance", keys, fuzzy=fuzzy, dialect=_dialect(session))
    if study_uid is not None:
        if not await _scope_visible(session, reader, "dicom.search", study_uid, series_uid):
            return None
        where.append(Study.study_uid == study_uid)
    if series_uid is not None:
        where.append(Series.series_uid == series_uid)
    rows = (
        await session.execute(
            select(Study, Series, Instance)
            .join(Series, Series.study_id == Study.id)
            .join(Instance, Instance.series_id == Series.id)
            .where(reader.visible, *where)
            .order_by(
                Study.id, Series.series_number, Series.id, Instance.instance_number, Instance.id
            )
            .limit(limit)
            .offset(offset)
        )
    ).all()
    _record_search(session, reader, "instance", study_uid, keys, len(rows))
    return [InstanceMatch(study, series, instance) for study, series, instance in rows]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _record_search(
    session: AsyncSession,
    reader: Reader,
    level: str,
    study_uid: str | None,
    keys: Mapping[str, str],
    results: int,
) -> None:
    reader.audit.record_apart(
        session,
        action="dicom.search",
        object_type=level,
        object_id=study_uid or "",
        org_id=reader.org_id,
        details={"keys": dict(keys), "results": results},
    )


async def first_instances(
    session: AsyncSession, *, study_ids: Iterable[int] = (), series_ids: Iterable[int] = ()
) -> dict[int, tuple[str, str]]:
    """(series UID, SOP Instance UID) of the first instance, keyed by study or series id."""
    studies, series = list(study_ids), list(series_ids)
    where = Instance.study_id.in_(studies) if studies else Instance.series_id.in_(series)
    rows = await session.execute(
        select(Instance.study_id, Instance.series_id, Series.series_uid, Instance.sop_instance_uid)
        .join(Series, Series.id == Instance.series_id)
        .where(where)
        .order_by(Series.series_number, Series.id, Instance.instance_number, Instance.id)
    )
    first: dict[int, tuple[str, str]] = {}
    for study_id, series_id, series_uid, sop_uid in rows:
        first.setdefault(study_id if studies else series_id, (series_uid, sop_uid))
    return first


@dataclass(frozen=True, slots=True)
class StudySeries:
    """A study's visible series and, by series id, the first instance of each."""

    study: Study
    series: list[SeriesMatch]
    first: dict[int, tuple[str, str]]
    """(series UID, SOP Instance UID) of each series' first instance, keyed by series id."""


async def study_series(
    *, session: AsyncSession, reader: Reader, study_uid: str, limit: int
) -> StudySeries | None:
    """The series of one study the reader may see (searched, so audited), or None."""
    matches = await search_series(
        session=session,
        reader=reader,
        study_uid=study_uid,
        keys={},
        fuzzy=False,
        limit=limit,
        offset=0,
    )
    if not matches:
        return None
    first = await first_instances(session, series_ids=[m.series.id for m in matches])
    return StudySeries(study=matches[0].study, series=matches, first=first)


# Locating for retrieval -----------------------------------------------------------


async def locate_instances(
    *,
    session: AsyncSession,
    reader: Reader,
    study_uid: str,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
    purpose: str,
) -> list[StoredInstance]:
    """The visible instances of a study, series or instance; empty (and audited) if none."""
    where: list[ColumnElement[bool]] = [Study.study_uid == study_uid]
    if series_uid is not None:
        where.append(Series.series_uid == series_uid)
    if sop_instance_uid is not None:
        where.append(Instance.sop_instance_uid == sop_instance_uid)
    level, object_id = _most_specific(study_uid, series_uid, sop_instance_uid)
    return await _located(session, reader, where, level, object_id, study_uid, purpose)


async def locate_instance(
    *, session: AsyncSession, reader: Reader, sop_instance_uid: str, purpose: str
) -> StoredInstance | None:
    """The visible instance with this SOP Instance UID, in whichever study; None (audited) if none.

    For APIs whose path names the instance alone (the ECG API). A SOP Instance UID is
    unique within an organisation; a reader who sees several organisations gets the
    first by study.
    """
    where = [Instance.sop_instance_uid == sop_instance_uid]
    found = await _located(session, reader, where, "instance", sop_instance_uid, None, purpose)
    return found[0] if found else None


async def _located(
    session: AsyncSession,
    reader: Reader,
    where: list[ColumnElement[bool]],
    level: str,
    object_id: str,
    study_uid: str | None,
    purpose: str,
) -> list[StoredInstance]:
    """The visible instances matching where; the retrieval (or the refusal) is audited."""
    rows = (
        await session.execute(
            select(
                Study.study_uid,
                Series.series_uid,
                Instance.sop_instance_uid,
                Instance.sop_class_uid,
                Instance.transfer_syntax_uid,
                Instance.sha256,
                Instance.size,
            )
            .join(Series, Series.study_id == Study.id)
            .join(Instance, Instance.series_id == Series.id)
            .where(reader.visible, *where)
            .order_by(
                Study.id, Series.series_number, Series.id, Instance.instance_number, Instance.id
            )
        )
    ).all()
    found = [StoredInstance(*row) for row in rows]
    study = study_uid if study_uid is not None else (found[0].study_uid if found else None)
    details = {"study": study, "purpose": purpose, "instances": len(found)}
    if found:
        reader.audit.record_apart(
            session,
            action="dicom.retrieve",
            object_type=level,
            object_id=object_id,
            org_id=reader.org_id,
            details=details,
        )
    else:
        owner = await session.scalar(
            select(Study.org_id)
            .join(Series, Series.study_id == Study.id)
            .join(Instance, Instance.series_id == Series.id)
            .where(*where)
            .limit(1)
        )
        _record_not_visible(session, reader, "dicom.retrieve", level, object_id, owner, details)
    return found


async def _scope_visible(
    session: AsyncSession,
    reader: Reader,
    action: str,
    study_uid: str,
    series_uid: str | None = None,
) -> bool:
    """True if the reader sees the study (and series); otherwise audit the attempt."""
    where: list[ColumnElement[bool]] = [Study.study_uid == study_uid]
    query = select(Study.org_id)
    if series_uid is not None:
        query = query.join(Series, Series.study_id == Study.id)
        where.append(Series.series_uid == series_uid)
    if await session.scalar(query.where(reader.visible, *where).limit(1)) is not None:
        return True
    owner = await session.scalar(query.where(*where).limit(1))
    level, object_id = _most_specific(study_uid, series_uid, None)
    _record_not_visible(session, reader, action, level, object_id, owner, {"study": study_uid})
    return False


def _most_specific(
    study_uid: str, series_uid: str | None, sop_instance_uid: str | None
) -> tuple[str, str]:
    if sop_instance_uid is not None:
        return "instance", sop_instance_uid
    if series_uid is not None:
        return "series", series_uid
    return "study", study_uid


def _record_not_visible(
    session: AsyncSession,
    reader: Reader,
    action: str,
    level: str,
    object_id: str,
    owner: int | None,
    details: Mapping[str, Any],
) -> None:
    """Denied when another organisation holds the object, failure when nobody does.

    Recorded in a transaction of its own, so that the 404 that follows keeps it.
    """
    reader.audit.record_apart(
        session,
        action=action,
        outcome=DENIED if owner is not None else FAILURE,
        object_type=level,
        object_id=object_id,
        org_id=owner if owner is not None else reader.org_id,
        details=details,
    )
