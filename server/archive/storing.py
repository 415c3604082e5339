"""Store DICOM instances for one organisation: stage (`staging`), then publish and index.

Storing keeps one guarantee: an instance reported as stored is on disk (staged
and fsynced, renamed, the renames made durable) and indexed (committed) before
the caller hears about it. A request's instances are staged concurrently,
published together and indexed in one transaction, shared with the requests
indexing at the same moment.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from dicom_tools.ingest import InstanceInfo, data_set_sha256
from server.archive import links, matching
from server.archive.models import Instance, Series, Study, name_key
from server.archive.staging import (
    ConflictPolicy,
    Items,
    Outcome,
    Staged,
    StoreResult,
    prepare_and_stage,
    result_of,
    stage_all,
    storage_failure,
)
from server.archive.storage import BlobStorage
from server.audit.service import FAILURE, SUCCESS, Recorder
from server.db import Base, transaction, utcnow
from server.errors import DomainError

if TYPE_CHECKING:
    from server.archive.archive import Archive

Action = Literal["insert", "duplicate", "replace", "conflict"]

MAX_AUDITED_REFUSALS = 50
"""SOP Instance UIDs named in a request's refusal event (its counts cover them all)."""

_CHUNK = 200
_WRITES: frozenset[Action] = frozenset({"insert", "replace"})
_STORED: dict[Action, Outcome] = {
    "insert": "stored",
    "duplicate": "duplicate",
    "replace": "replaced",
    "conflict": "conflict",
}


@dataclass(slots=True)
class _Plan:
    staged: Staged
    action: Action
    indexed_sha256: str | None = None
    failure: StoreResult | None = None


# Storing ----------------------------------------------------------------------


async def store_instances(
    archive: Archive,
    *,
    audit: Recorder,
    org_id: int,
    items: Items,
    source: str,
    study_uid: str | None = None,
) -> list[StoreResult]:
    """Validate, durably store and index Part 10 instances for org_id; one result per item."""
    storage = archive.storage
    prepare = partial(
        prepare_and_stage,
        storage,
        study_uid=study_uid,
        max_bytes=archive.max_instance_bytes,
        max_inflated_bytes=archive.max_inflated_bytes,
    )
    staged: list[Staged] = []
    try:
        try:
            received = await stage_all(items, prepare, staged)
        except DomainError as error:
            async with transaction(archive.session_maker) as session:
                await _record_refusal(session, audit, org_id, source, error.message)
            raise
        return await _index(archive, audit, org_id, source, received)
    finally:
        if staged:  # published blobs are no longer staged: discarding them is a no-op
            await asyncio.to_thread(storage.discard, [s.blob for s in staged])


async def _index(
    archive: Archive,
    audit: Recorder,
    org_id: int,
    source: str,
    received: list[Staged | StoreResult],
) -> list[StoreResult]:
    """Classify staged instances, publish the new ones, then index them in one transaction.

    The transaction is shared with other requests indexing at the same moment (a
    WriteGroup): every caller still hears back only after the commit that holds its rows.
    """
    storage, conflict = archive.storage, archive.conflict
    staged = [r for r in received if isinstance(r, Staged)]
    async with archive.session_maker() as session:
        indexed = await _indexed_digests(session, org_id, {s.info.sop_instance_uid for s in staged})
    plans = _plan(staged, indexed, conflict)
    if any(p.action in ("conflict", "replace") for p in plans):
        await asyncio.to_thread(_same_data_sets, storage, plans, indexed)
    new_bytes = [p for p in plans if p.action in _WRITES]
    try:
        if new_bytes:
            await asyncio.to_thread(storage.publish, [p.staged.blob for p in new_bytes])
    except OSError as error:
        for plan in new_bytes:
            plan.failure = storage_failure(plan.staged.info, error)

    async def index(session: AsyncSession) -> list[StoreResult]:
        attempt = [replace(plan) for plan in plans]  # _write_index revises raced plans
        if any(plan.failure is None for plan in attempt if plan.action in _WRITES):
            await _write_index(session, org_id, source, conflict, attempt)
        results = _results(received, attempt)
        await _record_store(session, audit, org_id, source, conflict, attempt, results)
        await links.link_by_identifier(
            session=session,
            audit=audit,
            org_id=org_id,
            study_uids={r.study_uid for r in results if r.ok and r.study_uid},
            source=source,
        )
        return results

    return await archive.write_group.run(index)


def _same_data_sets(storage: BlobStorage, plans: list[_Plan], indexed: dict[str, str]) -> None:
    """Different bytes under a known UID but the same data set are the same instance again.

    A modality re-sending what a GP uploaded writes its own File Meta Information (group
    0002: implementation, source AE title), so its file differs while its data set does
    not; that is a duplicate, not a conflict (runs in a worker thread).
    """
    for plan in plans:
        stored_sha256 = indexed.get(plan.staged.info.sop_instance_uid)
        if plan.action not in ("conflict", "replace") or stored_sha256 is None:
            continue
        if plan.indexed_sha256 != stored_sha256:
            continue  # compared with an instance of this same request, not yet published
        try:
            with storage.open(stored_sha256) as stored:
                before = data_set_sha256(stored)
            with storage.staging_path(plan.staged.blob.token).open("rb") as received:
                now = data_set_sha256(received)
        except OSError:
            continue  # unreadable: the plain digest comparison stands
        if before is not None and before == now:
            plan.action = "duplicate"


def _plan(staged: list[Staged], indexed: dict[str, str], conflict: ConflictPolicy) -> list[_Plan]:
    """Decide per instance: new, the same bytes again, or different bytes under a known UID."""
    known = dict(indexed)
    plans = []
    for item in staged:
        uid, sha256 = item.info.sop_instance_uid, item.info.sha256
        previous = known.get(uid)
        if previous is None:
            plans.append(_Plan(item, "insert"))
        elif previous == sha256:
            plans.append(_Plan(item, "duplicate", previous))
        else:
            plans.append(_Plan(item, "replace" if conflict == "replace" else "conflict", previous))
        if previous is None or conflict == "replace":
            known[uid] = sha256
    return plans


def _results(received: list[Staged | StoreResult], plans: list[_Plan]) -> list[StoreResult]:
    by_staged = {id(p.staged): p for p in plans}
    results = []
    for item in received:
        if isinstance(item, StoreResult):
            results.append(item)
            continue
        plan = by_staged[id(item)]
        if plan.failure is not None:
            results.append(plan.failure)
        elif plan.action == "conflict":
            results.append(
                result_of(
                    item.info,
                    "conflict",
                    reason="conflict",
                    message=f"SOP Instance {item.info.sop_instance_uid} is already stored "
                    "with different content",
                )
            )
        else:
            results.append(result_of(item.info, _STORED[plan.action]))
    return results


async def _by_uid(
    session: AsyncSession,
    uid: InstrumentedAttribute[str],
    value: InstrumentedAttribute[Any],
    org: InstrumentedAttribute[int],
    org_id: int,
    uids: Iterable[str],
) -> dict[str, Any]:
    """`value` by UID among one organisation's rows, queried in chunks."""
    found: dict[str, Any] = {}
    for chunk in _chunks(sorted(uids)):
        rows = await session.execute(select(uid, value).where(org == org_id, uid.in_(chunk)))
        found.update((key, found_value) for key, found_value in rows)
    return found


async def _indexed_digests(
    session: AsyncSession, org_id: int, uids: Iterable[str]
) -> dict[str, str]:
    """SHA-256 of the indexed instances among these SOP Instance UIDs."""
    return await _by_uid(
        session, Instance.sop_instance_uid, Instance.sha256, Instance.org_id, org_id, uids
    )


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _insert_new(session: AsyncSession, model: type[Base], *unique: str) -> Any:
    """INSERT into model's table that skips rows already there (by the unique columns).

    Executed with a list of rows it is one cached statement that the backend driver sends in
    batches (SQLAlchemy's insertmanyvalues), not a new multi-row statement to compile per call.
    """
    table = model.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(unique))


async def _write_index(
    session: AsyncSession,
    org_id: int,
    source: str,
    conflict: ConflictPolicy,
    plans: list[_Plan],
) -> None:
    """Insert or replace the index rows of the published instances among plans."""
    writes = [p for p in plans if p.action in _WRITES and p.failure is None]
    infos = [p.staged.info for p in writes]
    study_ids = await _ensure_studies(session, org_id, infos)
    series_ids = await _ensure_series(session, study_ids, infos)
    inserts = [p for p in writes if p.action == "insert"]
    inserted: set[str] = set()
    if inserts:
        rows = [_instance_values(p.staged, org_id, source, study_ids, series_ids) for p in inserts]
        statement = _insert_new(session, Instance, "org_id", "sop_instance_uid").returning(
            Instance.__table__.c.sop_instance_uid
        )
        inserted.update((await session.scalars(statement, rows)).all())
    raced = [p for p in inserts if p.staged.info.sop_instance_uid not in inserted]
    if raced:  # another request indexed the same UID since this one looked
        now = await _indexed_digests(
            session, org_id, {p.staged.info.sop_instance_uid for p in raced}
        )
        for plan in raced:
            plan.indexed_sha256 = now[plan.staged.info.sop_instance_uid]
            if plan.indexed_sha256 == plan.staged.info.sha256:
                plan.action = "duplicate"
            else:
                plan.action = "replace" if conflict == "replace" else "conflict"
    for plan in writes:
        if plan.action == "replace":
            await _replace(session, plan.staged, org_id, source, study_ids, series_ids)


async def _ensure_studies(
    session: AsyncSession, org_id: int, infos: list[InstanceInfo]
) -> dict[str, int]:
    """Study ids by UID for org_id, creating the missing studies from their first instance."""
    first: dict[str, dict[str, Any]] = {}
    for info in infos:
        first.setdefault(info.study_uid, _study_values(info, org_id))
    await session.execute(_insert_new(session, Study, "org_id", "study_uid"), list(first.values()))
    return await _by_uid(session, Study.study_uid, Study.id, Study.org_id, org_id, first)


async def _ensure_series(
    session: AsyncSession, study_ids: dict[str, int], infos: list[InstanceInfo]
) -> dict[tuple[int, str], int]:
    """Series ids by (study id, UID), creating the missing series from their first instance."""
    first: dict[tuple[int, str], dict[str, Any]] = {}
    for info in infos:
        key = (study_ids[info.study_uid], info.series_uid)
        first.setdefault(key, _series_values(info, key[0]))
    await session.execute(
        _insert_new(session, Series, "study_id", "series_uid"), list(first.values())
    )
    ids: dict[tuple[int, str], int] = {}
    for keys in _chunks(list(first)):
        rows = await session.execute(
            select(Series.study_id, Series.series_uid, Series.id).where(
                Series.study_id.in_({k[0] for k in keys}),
                Series.series_uid.in_({k[1] for k in keys}),
            )
        )
        ids.update({(study, uid): series for study, uid, series in rows})
    return ids


async def _replace(
    session: AsyncSession,
    staged: Staged,
    org_id: int,
    source: str,
    study_ids: dict[str, int],
    series_ids: dict[tuple[int, str], int],
) -> None:
    """Point an indexed SOP Instance UID at new bytes; drop a series or study left empty."""
    uid = staged.info.sop_instance_uid
    old = (
        await session.execute(
            select(Instance.id, Instance.series_id, Instance.study_id).where(
                Instance.org_id == org_id, Instance.sop_instance_uid == uid
            )
        )
    ).one()
    values = _instance_values(staged, org_id, source, study_ids, series_ids)
    await session.execute(update(Instance).where(Instance.id == old.id).values(values))
    if old.series_id != values["series_id"]:
        await session.execute(
            delete(Series).where(
                Series.id == old.series_id,
                ~exists().where(Instance.series_id == old.series_id),
            )
        )
        await session.execute(
            delete(Study).where(
                Study.id == old.study_id, ~exists().where(Series.study_id == old.study_id)
            )
        )


def _study_values(info: InstanceInfo, org_id: int) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "study_uid": info.study_uid,
        "patient_id": info.patient_id,
        "patient_name": info.patient_name,
        "patient_name_key": name_key(info.patient_name),
        "patient_birth_date": _valid(info.patient_birth_date, matching.is_date),
        "patient_sex": info.patient_sex,
        "study_date": _valid(info.study_date, matching.is_date),
        "study_time": _valid(info.study_time, matching.is_time),
        "accession_number": info.accession_number,
        "study_id": info.study_id,
        "study_description": info.study_description,
        "referring_physician_name": info.referring_physician_name,
        "referring_physician_key": name_key(info.referring_physician_name),
        "created_at": utcnow(),
    }


def _valid(value: str | None, check: Any) -> str | None:
    """The value when the check accepts it; dates and times are only indexed in DICOM form."""
    return value if value is not None and check(value) else None


def _series_values(info: InstanceInfo, study_id: int) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "series_uid": info.series_uid,
        "modality": info.modality,
        "series_number": info.series_number,
        "series_description": info.series_description,
        "body_part": info.body_part,
        "created_at": utcnow(),
    }


def _instance_values(
    staged: Staged,
    org_id: int,
    source: str,
    study_ids: dict[str, int],
    series_ids: dict[tuple[int, str], int],
) -> dict[str, Any]:
    info = staged.info
    study_id = study_ids[info.study_uid]
    return {
        "org_id": org_id,
        "study_id": study_id,
        "series_id": series_ids[(study_id, info.series_uid)],
        "sop_instance_uid": info.sop_instance_uid,
        "sop_class_uid": info.sop_class_uid,
        "instance_number": info.instance_number,
        "number_of_frames": info.number_of_frames,
        "rows": info.rows,
        "columns": info.columns,
        "bits_allocated": info.bits_allocated,
        "transfer_syntax_uid": info.transfer_syntax_uid,
        "sha256": info.sha256,
        "size": info.size,
        "preamble_neutralised": info.preamble_neutralised,
        "source": source,
        "stored_at": utcnow(),
    }


async def _record_store(
    session: AsyncSession,
    audit: Recorder,
    org_id: int,
    source: str,
    conflict: ConflictPolicy,
    plans: list[_Plan],
    results: list[StoreResult],
) -> None:
    """One audit event per study stored into and per conflict; one for all refused instances.

    A request of thousands of junk parts is one refusal event with counts, not thousands
    of rows written while the request holds the write transaction.
    """
    record = partial(audit.record, session, org_id=org_id)
    studies: dict[str, dict[str, list[str]]] = {}
    for result in results:
        if result.ok and result.study_uid and result.sop_instance_uid:
            study = studies.setdefault(result.study_uid, {})
            study.setdefault(result.outcome, []).append(result.sop_instance_uid)
    for study_uid, outcomes in studies.items():
        await record(
            action="dicom.store",
            object_type="study",
            object_id=study_uid,
            details={"source": source, **outcomes},
        )
    for plan in plans:
        if plan.failure is None and plan.action in ("conflict", "replace"):
            info = plan.staged.info
            await record(
                action="dicom.conflict",
                outcome=SUCCESS if plan.action == "replace" else FAILURE,
                object_type="instance",
                object_id=info.sop_instance_uid,
                details={
                    "source": source,
                    "policy": conflict,
                    "study": info.study_uid,
                    "indexed_sha256": plan.indexed_sha256,
                    "received_sha256": info.sha256,
                },
            )
    refused = [r for r in results if r.outcome in ("rejected", "failed")]
    if refused:
        await record(
            action="dicom.store",
            outcome=FAILURE,
            object_type="request",
            details={
                "source": source,
                "refused": len(refused),
                "reasons": dict(Counter(r.reason or "unknown" for r in refused)),
                "instances": [r.sop_instance_uid for r in refused if r.sop_instance_uid][
                    :MAX_AUDITED_REFUSALS
                ],
                "message": refused[0].message,
            },
        )


async def _record_refusal(
    session: AsyncSession, audit: Recorder, org_id: int, source: str, message: str
) -> None:
    await audit.record(
        session,
        action="dicom.store",
        outcome=FAILURE,
        object_type="request",
        org_id=org_id,
        details={"source": source, "message": message},
    )
