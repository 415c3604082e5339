"""PAdES B-B signature of a report PDF, with the canonical record embedded as report.json.

One incremental update on top of the rendered PDF holds the embedded record (an associated
file of the document, relationship /Data) and the signature (field "DoorstepReport",
ETSI.CAdES.detached, SHA-256), so the signature covers the record. The signer's and the
CA's certificates travel in the CMS. Synchronous: pyHanko runs its own event loop per call,
so call `sign` from a worker thread (`asyncio.to_thread`), never on a running loop.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import embed, generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko_certvalidator.registry import SimpleCertificateStore

from server.reports.authority import (
    Authority,
    SigningIdentity,
    fingerprint,
    load_identity_key,
)
from server.reports.record import ATTACHMENT_NAME, canonical_json, refuse_running_loop

FIELD_NAME = "DoorstepReport"
CACHED_SIGNERS = 256
RESERVE_MARGIN = 2048
"""Bytes reserved in the signature's /Contents beyond the two certificates (attributes, ECDSA)."""


class ReportSigner:
    """Signs report PDFs for the deployment; keeps each specialist's decrypted signer in memory."""

    def __init__(self, *, authority: Authority, secret: bytes) -> None:
        self._authority = authority
        self._secret = secret
        self._ca = asn1_x509.Certificate.load(
            authority.certificate.public_bytes(serialization.Encoding.DER)
        )
        self._signers: OrderedDict[str, tuple[signers.SimpleSigner, int]] = OrderedDict()
        self._lock = threading.Lock()

    def sign(
        self,
        *,
        pdf: bytes,
        record: Mapping[str, Any],
        identity: SigningIdentity,
        signed_at: datetime,
    ) -> bytes:
        """The PDF with the record embedded and a PAdES B-B signature by the identity."""
        refuse_running_loop("ReportSigner.sign")
        if signed_at.tzinfo is None:
            raise ValueError("signed_at must be an aware datetime")
        signer, reserved = self._signer(identity)
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        _embed_record(writer=writer, record=record, signed_at=signed_at)
        pdf_signer = signers.PdfSigner(
            signers.PdfSignatureMetadata(
                field_name=FIELD_NAME,
                md_algorithm="sha256",
                subfilter=fields.SigSeedSubFilter.PADES,
            ),
            signer=signer,
        )
        output = asyncio.run(
            _sign(pdf_signer=pdf_signer, writer=writer, signed_at=signed_at, reserved=reserved)
        )
        return output.getvalue()

    def _signer(self, identity: SigningIdentity) -> tuple[signers.SimpleSigner, int]:
        """The identity's pyHanko signer and signature size to reserve, cached by fingerprint."""
        key = fingerprint(identity.certificate_pem)
        with self._lock:
            cached = self._signers.get(key)
            if cached is not None:
                self._signers.move_to_end(key)
                return cached
        private_key = load_identity_key(identity=identity, secret=self._secret)
        certificate = x509.load_pem_x509_certificate(identity.certificate_pem)
        signer = signers.SimpleSigner(
            signing_cert=asn1_x509.Certificate.load(
                certificate.public_bytes(serialization.Encoding.DER)
            ),
            signing_key=asn1_keys.PrivateKeyInfo.load(
                private_key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            ),
            cert_registry=_certificate_store([self._ca]),
        )
        certificates = len(certificate.public_bytes(serialization.Encoding.DER)) + len(
            self._ca.dump()
        )
        reserved = certificates + RESERVE_MARGIN + certificates % 2
        with self._lock:
            self._signers[key] = (signer, reserved)
            while len(self._signers) > CACHED_SIGNERS:
                self._signers.popitem(last=False)
        return signer, reserved


def _certificate_store(certificates: list[Any]) -> SimpleCertificateStore:
    """A pyHanko certificate store holding the certificates (its constructor is untyped)."""
    store: Any = SimpleCertificateStore
    result: SimpleCertificateStore = store.from_certs(certificates)
    return result


def _embed_record(
    *, writer: IncrementalPdfFileWriter, record: Mapping[str, Any], signed_at: datetime
) -> None:
    """Attach the canonical record as report.json (application/json, associated as /Data)."""
    data = canonical_json(record)
    stamp = signed_at.astimezone(UTC)
    stream = embed.EmbeddedFileObject.from_file_data(
        writer,
        data=data,
        compress=True,
        params=embed.EmbeddedFileParams(creation_date=stamp, modification_date=stamp),
        mime_type="application/json",
    )
    embed.embed_file(
        writer,
        embed.FileSpec(
            file_spec_string=ATTACHMENT_NAME,
            file_name=ATTACHMENT_NAME,
            embedded_data=stream,
            description="The signed record of this report (canonical JSON, doorstep-report/1)",
            af_relationship=generic.pdf_name("/Data"),
        ),
    )


async def _sign(
    *,
    pdf_signer: signers.PdfSigner,
    writer: IncrementalPdfFileWriter,
    signed_at: datetime,
    reserved: int,
) -> io.BytesIO:
    """pyHanko's signing steps with the signing time set to `signed_at` and a fixed reservation."""
    session = pdf_signer.init_signing_session(writer)
    session.system_time = signed_at
    tbs = session.prepare_tbs_document(validation_info=None, bytes_reserved=reserved)
    prepared, output = tbs.digest_tbs_document()
    post = await tbs.perform_signature(
        document_digest=prepared.document_digest,
        pdf_cms_signed_attrs=PdfCMSSignedAttributes(signing_time=signed_at),
    )
    await post.post_signature_processing(output)
    assert isinstance(output, io.BytesIO)
    return output
