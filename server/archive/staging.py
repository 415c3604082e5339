"""Validate received instances and write them to staged blobs, a bounded amount at a time.

The first half of storing: every item (bytes, or a file it was spooled to on arrival)
is validated and written to a staging file in a worker thread; what fails becomes a
StoreResult that says why, and nothing of it stays behind.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from dicom_tools.errors import IngestError
from dicom_tools.ingest import InstanceInfo, PreparedInstance, inspect_part10, prepare_part10
from server.archive.storage import BlobStorage, SpooledInstance, StagedBlob

ConflictPolicy = Literal["reject", "replace"]
Received = bytes | SpooledInstance
"""One received instance: its bytes, or a file it was spooled to on arrival."""
Items = Iterable[Received] | AsyncIterable[Received]
Outcome = Literal["stored", "duplicate", "replaced", "conflict", "rejected", "failed"]

STAGING_BUDGET = 64 * 1024 * 1024
"""Bytes of instances being validated and written at once; one larger instance still goes."""
STAGING_THREADS = 4
"""Instances validated and written at once (each may inflate up to max_inflated_bytes)."""

_OK: frozenset[Outcome] = frozenset({"stored", "duplicate", "replaced"})


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreResult:
    """What happened to one received instance; reason is a stable code when it failed."""

    outcome: Outcome
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    reason: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the instance is in the archive (stored now, before, or replaced)."""
        return self.outcome in _OK


@dataclass(frozen=True, slots=True)
class Staged:
    info: InstanceInfo
    blob: StagedBlob


async def _each(items: Items) -> AsyncIterator[Received]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def stage_all(
    items: Items,
    prepare: Callable[[Received], Staged | StoreResult],
    staged: list[Staged],
) -> list[Staged | StoreResult]:
    """Validate and stage every item in worker threads, a bounded number of bytes at a time."""
    tasks: list[asyncio.Task[Staged | StoreResult]] = []
    in_flight: dict[asyncio.Task[Staged | StoreResult], int] = {}
    try:
        async for data in _each(items):
            while in_flight and (
                len(in_flight) >= STAGING_THREADS
                or sum(in_flight.values()) + _in_memory(data) > STAGING_BUDGET
            ):
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del in_flight[task]
            task = asyncio.create_task(asyncio.to_thread(prepare, data))
            tasks.append(task)
            in_flight[task] = _in_memory(data)
            del data
    finally:
        # Threads cannot be cancelled: wait for every one so that nothing staged is forgotten.
        finished = await asyncio.gather(*tasks, return_exceptions=True)
        staged.extend(result for result in finished if isinstance(result, Staged))
    for result in finished:
        if isinstance(result, BaseException):
            raise result
    return [result for result in finished if not isinstance(result, BaseException)]


def _in_memory(item: Received) -> int:
    """Bytes an item holds in memory while it is validated (a spooled one is read in place)."""
    return len(item) if isinstance(item, bytes) else 0


def prepare_and_stage(
    storage: BlobStorage,
    data: Received,
    *,
    study_uid: str | None,
    max_bytes: int | None,
    max_inflated_bytes: int,
) -> Staged | StoreResult:
    """Validate one instance and write it to a staged blob (runs in a worker thread).

    A spooled instance is validated where it lies and staged in place; one refused is removed.
    """
    prepared: PreparedInstance | None = None
    info: InstanceInfo | None = None
    try:
        if isinstance(data, SpooledInstance):
            path = storage.staging_path(data.token)
            info = inspect_part10(path, max_bytes=max_bytes, max_inflated_bytes=max_inflated_bytes)
        else:
            prepared = prepare_part10(
                data, max_bytes=max_bytes, max_inflated_bytes=max_inflated_bytes
            )
            info = prepared.info
        if study_uid is not None and info.study_uid != study_uid:
            refused = result_of(
                info,
                "rejected",
                reason="study_mismatch",
                message=f"StudyInstanceUID {info.study_uid} is not the study {study_uid} "
                "this request stores into",
            )
        elif prepared is not None:
            return Staged(info, storage.stage(prepared.data, info.sha256))
        elif isinstance(data, SpooledInstance):
            staged = storage.stage_spooled(
                data, info.sha256, zero_preamble=info.preamble_neutralised
            )
            return Staged(info, staged)
    except IngestError as error:
        refused = StoreResult(outcome="rejected", reason=error.reason, message=error.message)
    except OSError as error:
        refused = storage_failure(info, error)
    if isinstance(data, SpooledInstance):
        storage.abandon_spooled(data)
    return refused


def result_of(
    info: InstanceInfo, outcome: Outcome, *, reason: str = "", message: str = ""
) -> StoreResult:
    return StoreResult(
        outcome=outcome,
        sop_class_uid=info.sop_class_uid,
        sop_instance_uid=info.sop_instance_uid,
        study_uid=info.study_uid,
        series_uid=info.series_uid,
        reason=reason or None,
        message=message,
    )


def storage_failure(info: InstanceInfo | None, error: OSError) -> StoreResult:
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    reason = "out_of_resources" if full else "storage"
    message = f"the archive could not write the instance: {error.strerror or error}"
    if info is None:  # the spooled file could not even be read
        return StoreResult(outcome="failed", reason=reason, message=message)
    return result_of(info, "failed", reason=reason, message=message)
