"""The DIMSE SCP as a managed background service of the application (a cleanup context)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from pynetdicom import AE, evt

from server import keys
from server.dimse import tls
from server.dimse.association import handle_assoc_request
from server.dimse.contexts import supported_contexts
from server.dimse.query import handle_find
from server.dimse.scp import Scp
from server.dimse.storage import handle_store
from server.dimse.transport import handle_conn_open, handle_pdu_sent
from server.dimse.verification import handle_echo
from server.serving import CannotListen
from server.settings import Settings

log = logging.getLogger(__name__)

MAXIMUM_PDU_SIZE = 1024 * 1024
"""Largest P-DATA-TF PDU we accept (PS3.8 9.3.1), advertised to SCUs, which send PDUs up to it.

pynetdicom's default of 16 KiB makes a 5 MB C-STORE 320 PDUs, each decoded in Python.
"""


def create_ae(scp: Scp) -> AE:
    """The application entity: our AE title and every supported presentation context."""
    ae = AE(ae_title=scp.settings.ae_title)
    ae.supported_contexts = supported_contexts()
    ae.maximum_pdu_size = MAXIMUM_PDU_SIZE
    return ae


def event_handlers(scp: Scp) -> list[tuple[Any, ...]]:
    """The handlers bound to the SCP's events, each given its dependencies."""
    return [
        (evt.EVT_CONN_OPEN, handle_conn_open),
        (evt.EVT_PDU_SENT, handle_pdu_sent),
        (evt.EVT_REQUESTED, handle_assoc_request, [scp]),
        (evt.EVT_C_ECHO, handle_echo),
        (evt.EVT_C_STORE, handle_store, [scp]),
        (evt.EVT_C_FIND, handle_find, [scp]),
    ]


async def dimse_server(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: serve DIMSE on settings.dicom_port (0 disables) in pynetdicom threads."""
    settings = app[keys.SETTINGS]
    if settings.dicom_port == 0:
        yield
        return
    scp = Scp(
        loop=asyncio.get_running_loop(),
        archive=app[keys.ARCHIVE],
        audit_log=app[keys.AUDIT],
        settings=settings,
    )
    ae = create_ae(scp)
    ssl_context = tls.server_context(settings)
    try:
        server = await asyncio.to_thread(
            tls.start_server,
            ae,
            (settings.host, settings.dicom_port),
            event_handlers(scp),
            ssl_context,
        )
    except OSError as error:
        raise CannotListen("DICOM", settings.host, settings.dicom_port, error) from error
    log.info(
        "DICOM SCP %s listening on %s:%d (%s)",
        settings.ae_title,
        settings.host,
        settings.dicom_port,
        _transport(settings),
    )
    try:
        yield
    finally:
        await asyncio.to_thread(server.shutdown)
        await asyncio.to_thread(_abort_associations, ae)


def _transport(settings: Settings) -> str:
    if not settings.dicom_tls_enabled:
        return "plain TCP"
    return "TLS, client certificates required" if settings.dicom_tls_ca else "TLS"


def _abort_associations(ae: AE) -> None:
    """Abort associations still open, so that no handler waits on a loop that is stopping."""
    for assoc in ae.active_associations:
        assoc.abort()
