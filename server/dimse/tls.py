"""DICOM TLS (PS3.15 Annex B): the listener's SSLContext, the peer's certificate, the server.

With DOORSTEP_DICOM_TLS_CERT and _KEY the listener speaks TLS 1.2 or newer
(the BCP 195 profiles of PS3.15 B.9 and B.10). With DOORSTEP_DICOM_TLS_CA every
peer must present a certificate that chains to those CAs; the certificate's
SHA-256 is then matched against the one pinned to an organisation (`doorstep
org update NAME --dicom-cert-sha256 HEX`), as IHE ATNA node authentication
configures the certificates of the nodes it trusts.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
import threading
from typing import Any

from pynetdicom import AE
from pynetdicom.transport import ThreadedAssociationServer
from pynetdicom.utils import make_target

from server.settings import Settings

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 30.0
"""Seconds a connecting peer has to complete the TLS handshake."""


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS context, None without DICOM TLS; a half configuration is refused."""
    cert, key, ca = settings.dicom_tls_cert, settings.dicom_tls_key, settings.dicom_tls_ca
    if cert is None and key is None:
        if ca is not None:
            raise ValueError(
                "DOORSTEP_DICOM_TLS_CA needs DOORSTEP_DICOM_TLS_CERT and DOORSTEP_DICOM_TLS_KEY"
            )
        return None
    if cert is None or key is None:
        raise ValueError("set both DOORSTEP_DICOM_TLS_CERT and DOORSTEP_DICOM_TLS_KEY")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if ca is not None:
        context.load_verify_locations(cafile=ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def peer_certificate_sha256(assoc: Any) -> str | None:
    """SHA-256 (hex) of the verified client certificate of an association, if it has one."""
    sock = assoc.dul.socket.socket if assoc.dul.socket is not None else None
    if not isinstance(sock, ssl.SSLSocket) or sock.context.verify_mode != ssl.CERT_REQUIRED:
        return None
    der = sock.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest() if der else None


class DicomServer(ThreadedAssociationServer):
    """pynetdicom's threaded server, with TLS handshakes in the connection's own thread.

    pynetdicom wraps an accepted socket in the accept loop, where the handshake
    blocks without a timeout: one silent connection would stop the listener.
    Here the accept loop only accepts; each handshake has HANDSHAKE_TIMEOUT seconds.
    """

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection; the TLS handshake is left to the connection's thread."""
        assert self.socket is not None  # bound and listening
        client, address = self.socket.accept()
        if self.ssl_context is not None:
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Complete the TLS handshake, then serve the association as pynetdicom does."""
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(HANDSHAKE_TIMEOUT)
                request.do_handshake()
                request.settimeout(None)
            except OSError as error:  # ssl.SSLError, a timeout or a reset
                log.warning("DICOM TLS handshake with %s failed: %s", client_address[0], error)
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)


def start_server(
    ae: AE, address: tuple[str, int], evt_handlers: list[Any], ssl_context: ssl.SSLContext | None
) -> DicomServer:
    """Serve in a daemon thread, as AE.start_server(block=False) does, with DicomServer."""
    server = ae.make_server(
        address, evt_handlers=evt_handlers, ssl_context=ssl_context, server_class=DicomServer
    )
    assert isinstance(server, DicomServer)
    thread = threading.Thread(
        target=make_target(server.serve_forever), name=f"DicomServer@{address[1]}", daemon=True
    )
    thread.start()
    ae._servers.append(server)  # AssociationServer.shutdown removes itself from this list
    return server
