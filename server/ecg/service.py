"""The ECG API's service: locate an ECG instance (scoped, audited), read, measure, draw, cache.

An instance is found by its SOP Instance UID through the archive, which scopes it
to what the reader may see and audits the read (``dicom.retrieve``, purpose
``ecg`` or ``ecg.svg``) or the refusal, as WADO-RS does. Reading, measuring and
drawing block and run in a worker thread. Their results are kept in a bounded
in-memory cache keyed by the blob's SHA-256 (stored instances never change), so
a second request is answered without reading the file again; each response's
ETag is the SHA-256 of its bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydicom.dataset import Dataset
from sqlalchemy.ext.asyncio import AsyncSession

from dicom_tools import ecg as ecg_reader
from dicom_tools.ecg import ECG_SOP_CLASSES, Ecg, EcgError, open_dataset, read_ecg
from dicom_tools.ecg_measurements import Measurements, measure
from dicom_tools.ecg_svg import Header, Layout, render_svg
from server.archive import service as archive
from server.archive.storage import BlobStorage
from server.ecg.schemas import EcgOut
from server.errors import DomainError, NotFound
from server.identity import Role
from server.templates import dicom_date, dicom_time, person_name, sex

log = logging.getLogger(__name__)
T = TypeVar("T")

READERS = (Role.GP, Role.SPECIALIST, Role.ADMIN)
"""Who may call the ECG API: as WADO-RS (an administrator sees only under break-glass)."""
MAX_ECG_BYTES = 64 * 1024 * 1024
"""A stored ECG file larger than this is not read (an ECG of 4 million samples is 8 MB)."""
CACHE_BYTES = 64 * 1024 * 1024
_REFUSAL_SIZE = 1024
_NOTHING = Measurements(None, None, None, None, None, None, None, None, None)


class UnreadableEcg(DomainError):
    """The instance has no ECG this server can read; ``details.reason`` says why."""

    status = 422
    code = "ecg_unreadable"


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one stored ECG gives: the calibrated leads, the measurements, the header text."""

    ecg: Ecg
    measurements: Measurements
    header: Header
    notes: tuple[str, ...]

    @property
    def size(self) -> int:
        return sum(lead.samples_uv.nbytes for lead in self.ecg.leads)


@dataclass(frozen=True, slots=True)
class Body:
    """A response body and its strong entity tag (unquoted: the SHA-256 of the bytes)."""

    content: bytes
    tag: str

    @classmethod
    def of(cls, content: bytes) -> Body:
        return cls(content, hashlib.sha256(content).hexdigest())


class EcgCache:
    """A bounded LRU of analyses, bodies and refusals; one computation per key at a time."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}

    async def get(
        self, key: Hashable, compute: Callable[[], Awaitable[T]], size: Callable[[T], int]
    ) -> T:
        """The cached value of key, else compute it once (concurrent callers share the work)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            if isinstance(entry[0], UnreadableEcg):  # a fresh exception: no traceback piles up
                raise UnreadableEcg(entry[0].message, details=entry[0].details)
            return cast(T, entry[0])
        self.misses += 1
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(compute())
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done, size))
        # shielded: a caller that goes away does not cancel the others' computation
        return cast(T, await asyncio.shield(pending))

    def _settle(self, key: Hashable, done: asyncio.Future[Any], size: Callable[[Any], int]) -> None:
        self._pending.pop(key, None)
        if done.cancelled():
            return
        error = done.exception()  # retrieved here, so an unawaited failure is not logged twice
        if error is None:
            self._put(key, done.result(), size(done.result()))
        elif isinstance(error, UnreadableEcg):
            self._put(key, error, _REFUSAL_SIZE)

    def _put(self, key: Hashable, value: object, size: int) -> None:
        if size > self.max_bytes:
            return
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped


# Locating -------------------------------------------------------------------------------------


async def locate(
    *, session: AsyncSession, reader: archive.Reader, sop_instance_uid: str, purpose: str
) -> archive.StoredInstance:
    """The visible instance (the read or the refusal audited); 404, or 422 if it is no ECG."""
    found = await archive.locate_instance(
        session=session, reader=reader, sop_instance_uid=sop_instance_uid, purpose=purpose
    )
    if found is None:
        raise NotFound(f"No instance {sop_instance_uid} in your organisation.")
    if found.sop_class_uid not in ECG_SOP_CLASSES:
        raise UnreadableEcg(
            "This instance has no ECG waveform: its SOP class is not an ECG "
            "(12-lead, general or ambulatory ECG waveform).",
            details={"reason": "not_ecg", "sop_class_uid": found.sop_class_uid},
        )
    return found


# Responses --------------------------------------------------------------------------------------


async def ecg_json(
    *, storage: BlobStorage, cache: EcgCache, instance: archive.StoredInstance
) -> Body:
    """The ECG API's JSON body of a stored ECG (cached)."""
    key = ("json", instance.sha256, instance.study_uid, instance.sop_instance_uid)

    async def compute() -> Body:
        analysis = await _analysis(storage, cache, instance)
        return await asyncio.to_thread(_json_body, analysis, instance)

    return await cache.get(key, compute, lambda body: len(body.content))


async def ecg_svg(
    *,
    storage: BlobStorage,
    cache: EcgCache,
    instance: archive.StoredInstance,
    layout: Layout,
    speed: int,
    gain: int,
) -> Body:
    """The ECG on paper as SVG (cached per layout, speed and gain)."""
    key = ("svg", instance.sha256, layout, speed, gain)

    async def compute() -> Body:
        analysis = await _analysis(storage, cache, instance)
        text = await asyncio.to_thread(
            render_svg,
            analysis.ecg,
            measurements=analysis.measurements,
            header=analysis.header,
            layout=layout,
            speed=float(speed),
            gain=float(gain),
        )
        return Body.of(text.encode())

    return await cache.get(key, compute, lambda body: len(body.content))


async def _analysis(
    storage: BlobStorage, cache: EcgCache, instance: archive.StoredInstance
) -> Analysis:
    async def compute() -> Analysis:
        return await asyncio.to_thread(_analyse, storage, instance)

    return await cache.get(("analysis", instance.sha256), compute, lambda found: found.size)


def _analyse(storage: BlobStorage, instance: archive.StoredInstance) -> Analysis:
    """Read, calibrate and measure a stored ECG (blocking)."""
    if instance.size > MAX_ECG_BYTES:
        raise UnreadableEcg(
            f"The ECG file is {instance.size} bytes; ECG files above {MAX_ECG_BYTES} bytes "
            "are not read here.",
            details={"reason": "too_large"},
        )
    with storage.open(instance.sha256) as source:
        try:
            dataset = open_dataset(source)
            ecg = read_ecg(dataset)
        except EcgError as error:
            raise UnreadableEcg(error.message, details={"reason": error.reason}) from None
    notes = list(ecg.notes)
    try:
        measurements = measure(ecg.standard_leads(), ecg.sampling_frequency)
    except Exception:
        log.exception("automatic ECG measurement failed on %s", instance.sha256)
        measurements = _NOTHING
        notes.append("The automatic measurements failed on this ECG; none are shown.")
    return Analysis(ecg, measurements, _header(dataset), tuple(notes))


def _header(dataset: Dataset) -> Header:
    """The patient and study, formatted as the pages show them."""

    def text(keyword: str) -> str:
        try:
            value = dataset.get(keyword)
        except Exception:  # an unreadable header value is left out, not a failure
            return ""
        return "" if value is None else str(value).strip()

    def shown(value: str, formatted: Callable[[str], str]) -> str:
        return formatted(value) if value else ""

    study = " ".join(
        part
        for part in (shown(text("StudyDate"), dicom_date), shown(text("StudyTime"), dicom_time))
        if part
    )
    return Header(
        patient_name=shown(text("PatientName"), person_name),
        patient_id=text("PatientID"),
        birth_date=shown(text("PatientBirthDate"), dicom_date),
        sex=shown(text("PatientSex"), sex),
        study=study,
    )


def _json_body(analysis: Analysis, instance: archive.StoredInstance) -> Body:
    """The JSON body: validated against the schema, except the samples (ints by construction).

    The samples (12 x 5000 for a 10 s 500 Hz ECG) are numpy's int64 as Python ints; they
    are set after validation, which would only check that again, and serialised by
    pydantic's encoder with the rest.
    """
    ecg = analysis.ecg
    payload = EcgOut.model_validate(
        {
            "sop_instance_uid": instance.sop_instance_uid,
            "study_uid": instance.study_uid,
            "sampling_frequency": ecg.sampling_frequency,
            "duration_s": ecg.duration_s,
            "leads": [
                {"name": lead.name, "unit": "uV", "samples": [], "derived": lead.derived}
                for lead in ecg.leads
            ],
            "measurements": analysis.measurements.as_dict(),
            "device_measurements": ecg.device.as_dict(),
            "notes": list(analysis.notes),
        }
    )
    for out, lead in zip(payload.leads, ecg.leads, strict=True):
        out.samples = ecg_reader.whole_microvolts(lead.samples_uv).tolist()
    return Body.of(payload.__pydantic_serializer__.to_json(payload))
