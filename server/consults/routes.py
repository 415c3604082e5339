"""Routes of the consults API and the call's signaling socket; the offer watch, the rooms."""

from __future__ import annotations

from aiohttp import web

from server.consults import (
    check,
    guest_pages,
    lifetime,
    pages,
    paths,
    recording_peer,
    signal_views,
    signaling,
    views,
)


def setup(app: web.Application) -> None:
    """Register the consults API and pages, the signaling socket, the offer watch and the rooms."""
    app.cleanup_ctx.append(lifetime.offer_watch)
    app.cleanup_ctx.append(signaling.rooms)
    app.cleanup_ctx.append(check.echo_peers)
    app.cleanup_ctx.append(recording_peer.recorders)
    app.on_shutdown.append(signaling.close_sockets)
    app.router.add_get("/api/v1/duty", views.get_duty)
    app.router.add_put("/api/v1/duty", views.put_duty)
    app.router.add_post("/api/v1/consults", views.create_consult)
    app.router.add_get("/api/v1/consults", views.list_consults)
    app.router.add_get(f"/api/v1/consults/{paths.ID}", views.get_consult)
    app.router.add_post(f"/api/v1/consults/{paths.ID}/accept", views.accept)
    app.router.add_post(f"/api/v1/consults/{paths.ID}/decline", views.decline)
    app.router.add_post(f"/api/v1/consults/{paths.ID}/end", views.end)
    app.router.add_post(f"/api/v1/consults/{paths.ID}/note", views.add_note)
    app.router.add_get(f"/api/v1/consults/{paths.ID}/ice", views.ice_servers)
    app.router.add_post(f"/api/v1/consults/{paths.ID}/recording", views.recording_consent)
    app.router.add_get(f"/api/v1/consults/{paths.ID}/recording", views.recording_file)
    app.router.add_get(f"/api/v1/consults/{paths.ID}/recording/state", views.recording_state)
    app.router.add_get("/api/v1/consults/check/ice", views.check_ice)
    app.router.add_post("/api/v1/consults/check", views.check_answer)
    app.router.add_get(f"/api/v1/consults/{paths.ID}/signal", signal_views.signal_socket)
    app.router.add_post(f"/api/v1/consults/{paths.ID}/guests", views.invite_guest)
    app.router.add_get(f"/api/v1/consults/{paths.ID}/guests", views.list_guests)
    app.router.add_delete(
        f"/api/v1/consults/{paths.ID}/guests/{{guest_id:[0-9]{{1,12}}}}", views.revoke_guest
    )
    app.router.add_get("/consults/guest/{token}", guest_pages.open_link)
    pages.setup_pages(app)
