"""Reading API: requests, the worklist, claims (claim, release, next, renew, reassign), drafts."""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.context import db, principal, recorder
from server.endpoint import api, json_response, read_body, read_query
from server.errors import NotFound
from server.identity import Role
from server.reading import service
from server.reading.models import Priority
from server.reading.schemas import (
    ClaimOut,
    DraftIn,
    DraftOut,
    ReadingRequestIn,
    ReadingRequestOut,
    ReassignIn,
    ReleaseOut,
    WorklistItem,
    WorklistQuery,
)


def _policy(request: web.Request) -> service.Policy:
    return service.Policy.of(request.app[keys.SETTINGS])


def _request_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"No reading request {raw[:20]}.")
    return int(raw)


def worklist_item(
    item: service.Item, report_id: int | None = None, *, patient_data: bool = True
) -> WorklistItem:
    """The JSON of one worklist entry; without patient data (name, question) for admins."""
    r = item.request
    return WorklistItem(
        id=r.id,
        status=item.status,
        priority=r.priority,
        due_at=r.due_at,
        overdue=item.overdue,
        specialty=r.specialty,
        study_uid=r.study_uid,
        clinic=item.clinic,
        question=r.question if patient_data else "",
        claimed_by=item.holder,
        lease_expires_at=r.lease_expires_at if item.holder else None,
        created_at=r.created_at,
        requested_by=item.requested_by,
        patient_name=item.patient_name if patient_data else "",
        study_description=item.study_description if patient_data else "",
        modalities=list(item.modalities),
        report_id=report_id,
    )


def _claim(claim: service.Claim) -> ClaimOut:
    return ClaimOut(
        id=claim.id,
        status=claim.status,
        claimed_by=claim.claimed_by,
        lease_expires_at=claim.lease_expires_at,
    )


def _held(item: service.Item) -> ClaimOut:
    return ClaimOut(
        id=item.request.id,
        status=item.status,
        claimed_by=item.holder,
        lease_expires_at=item.request.lease_expires_at if item.holder else None,
    )


@api(
    summary="Ask a specialty to read a study of your clinic (due by the priority's SLA)",
    tag="reading",
    body=ReadingRequestIn,
    response=ReadingRequestOut,
    status=201,
    roles=(Role.GP,),
)
async def create_request(request: web.Request) -> web.Response:
    """POST /api/v1/reading-requests."""
    body = await read_body(request, ReadingRequestIn)
    async with db(request) as session:
        item = await service.create(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
            study_uid=body.study_uid,
            specialty=body.specialty,
            priority=body.priority,
            question=body.question,
            preferred_hospital=body.preferred_hospital,
        )
    r = item.request
    out = ReadingRequestOut(
        id=r.id,
        status=r.status,
        study_uid=r.study_uid,
        specialty=r.specialty,
        priority=r.priority,
        due_at=r.due_at,
        created_at=r.created_at,
    )
    return json_response(out, status=201)


@api(
    summary="The requests of your clinic (GP) or of your specialties (specialist)",
    tag="reading",
    query=WorklistQuery,
    response=list[WorklistItem],
    roles=(Role.GP, Role.SPECIALIST, Role.ADMIN),
)
async def list_requests(request: web.Request) -> web.Response:
    """GET /api/v1/reading-requests."""
    return await _listed(request)


@api(
    summary="Your worklist: open requests of your specialties, most urgent first",
    tag="reading",
    query=WorklistQuery,
    response=list[WorklistItem],
    roles=(Role.SPECIALIST,),
)
async def worklist(request: web.Request) -> web.Response:
    """GET /api/v1/worklist."""
    return await _listed(request)


async def _listed(request: web.Request) -> web.Response:
    query = read_query(request, WorklistQuery)
    filters = service.Filters(
        specialty=query.specialty,
        priority=Priority(query.priority) if query.priority else None,
        clinic=query.clinic,
        status=query.status,
    )
    async with db(request) as session:
        found = await service.items(session=session, caller=principal(request), filters=filters)
        reports = await service.report_ids(
            session=session, request_ids=[i.request.id for i in found]
        )
    clinical = principal(request).role is not Role.ADMIN
    return json_response(
        [worklist_item(i, reports.get(i.request.id), patient_data=clinical) for i in found]
    )


@api(
    summary="One reading request",
    tag="reading",
    response=WorklistItem,
    roles=(Role.GP, Role.SPECIALIST, Role.ADMIN),
)
async def get_request(request: web.Request) -> web.Response:
    """GET /api/v1/reading-requests/{id}."""
    request_id = _request_id(request)
    async with db(request) as session:
        found = await service.item(
            session=session, caller=principal(request), request_id=request_id
        )
        reports = await service.report_ids(session=session, request_ids=[request_id])
    clinical = principal(request).role is not Role.ADMIN
    return json_response(worklist_item(found, reports.get(request_id), patient_data=clinical))


@api(
    summary="Claim a request for a lease (renewed while you work)",
    tag="reading",
    response=ClaimOut,
    errors=(409,),
    roles=(Role.SPECIALIST,),
)
async def claim(request: web.Request) -> web.Response:
    """POST /api/v1/reading-requests/{id}/claim."""
    request_id = _request_id(request)
    async with db(request) as session:
        found = await service.claim(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
            request_id=request_id,
        )
    return json_response(_claim(found))


@api(
    summary="Next case: claim the most urgent waiting request of your specialties (204: none)",
    tag="reading",
    response=ClaimOut,
    roles=(Role.SPECIALIST,),
)
async def claim_next(request: web.Request) -> web.Response:
    """POST /api/v1/reading-requests/next."""
    async with db(request) as session:
        found = await service.claim_next(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
        )
    if found is None:
        return web.Response(status=204)
    return json_response(_claim(found))


@api(
    summary="Renew your lease on a claimed request (the viewer does this while open)",
    tag="reading",
    response=ClaimOut,
    errors=(409,),
    roles=(Role.SPECIALIST,),
)
async def renew(request: web.Request) -> web.Response:
    """POST /api/v1/reading-requests/{id}/renew."""
    request_id = _request_id(request)
    async with db(request) as session:
        found = await service.renew(
            session=session,
            caller=principal(request),
            policy=_policy(request),
            request_id=request_id,
        )
    return json_response(_held(found))


@api(
    summary="Release your claim: the request goes back to the queue",
    tag="reading",
    response=ReleaseOut,
    errors=(409,),
    roles=(Role.SPECIALIST, Role.ADMIN),
)
async def release(request: web.Request) -> web.Response:
    """POST /api/v1/reading-requests/{id}/release."""
    request_id = _request_id(request)
    async with db(request) as session:
        found = await service.release(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            request_id=request_id,
        )
    return json_response(ReleaseOut(id=found.request.id, status=found.status))


@api(
    summary="Cancel an open request of your clinic (its study closes to the specialty again)",
    tag="reading",
    response=ReleaseOut,
    errors=(409,),
    roles=(Role.GP,),
)
async def cancel(request: web.Request) -> web.Response:
    """POST /api/v1/reading-requests/{id}/cancel."""
    request_id = _request_id(request)
    async with db(request) as session:
        found = await service.cancel(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            request_id=request_id,
        )
    return json_response(ReleaseOut(id=found.request.id, status=found.request.status))


@api(
    summary="Reassign an open request to a named reader of its specialty (administrators)",
    tag="reading",
    body=ReassignIn,
    response=ClaimOut,
    errors=(409,),
    roles=(Role.ADMIN,),
)
async def reassign(request: web.Request) -> web.Response:
    """POST /api/v1/reading-requests/{id}/reassign."""
    request_id = _request_id(request)
    body = await read_body(request, ReassignIn)
    async with db(request) as session:
        found = await service.reassign(
            session=session,
            caller=principal(request),
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            policy=_policy(request),
            request_id=request_id,
            username=body.username,
        )
    return json_response(_held(found))


@api(
    summary="Save your draft report (holder only; renews the lease)",
    tag="reading",
    body=DraftIn,
    response=DraftOut,
    errors=(409,),
    roles=(Role.SPECIALIST,),
)
async def save_draft(request: web.Request) -> web.Response:
    """PUT /api/v1/reading-requests/{id}/report."""
    request_id = _request_id(request)
    body = await read_body(request, DraftIn)
    async with db(request) as session:
        saved = await service.save_draft(
            session=session,
            caller=principal(request),
            policy=_policy(request),
            request_id=request_id,
            findings=body.findings,
            impression=body.impression,
            measurements=dict(body.measurements),
        )
        current = await service.item(
            session=session, caller=principal(request), request_id=request_id
        )
    return json_response(_draft(saved, current))


@api(
    summary="The draft report of a request",
    tag="reading",
    response=DraftOut,
    roles=(Role.SPECIALIST,),
)
async def get_draft(request: web.Request) -> web.Response:
    """GET /api/v1/reading-requests/{id}/report."""
    request_id = _request_id(request)
    async with db(request) as session:
        saved = await service.draft(
            session=session, caller=principal(request), request_id=request_id
        )
        current = await service.item(
            session=session, caller=principal(request), request_id=request_id
        )
    if saved is None:
        raise NotFound(f"Reading request {request_id} has no draft yet.")
    return json_response(_draft(saved, current))


def _draft(saved: object, current: service.Item) -> DraftOut:
    out = DraftOut.model_validate(saved)
    out.lease_expires_at = current.request.lease_expires_at if current.holder else None
    return out
