"""The deployment's signing service: its CA (created on first use) and the specialists' keys.

One object per process, built in the feature's lifetime: the CA is loaded once, and
the PAdES signer caches each specialist's decrypted key, so that a signature costs
the signing itself, not the key's decryption.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.identity import Principal
from server.reports import authority as ca
from server.reports.models import SigningIdentity
from server.reports.pades import ReportSigner
from server.reports.pdf import render_report_pdf
from server.reports.verification import Verification, verify_report_pdf


class Signing:
    """Signs report PDFs for specialists with certificates of the deployment's CA."""

    def __init__(self, *, directory: Path, secret: bytes) -> None:
        self.directory = directory
        self._secret = secret
        self._authority: ca.Authority | None = None
        self._signer: ReportSigner | None = None
        self._lock = asyncio.Lock()

    async def authority(self) -> ca.Authority:
        """The CA, loaded (or created, the first time) once per process."""
        async with self._lock:
            if self._authority is None:
                self._authority = await asyncio.to_thread(
                    ca.load_or_create_authority, directory=self.directory, secret=self._secret
                )
                self._signer = ReportSigner(authority=self._authority, secret=self._secret)
            return self._authority

    async def identity(self, *, session: AsyncSession, caller: Principal) -> ca.SigningIdentity:
        """The caller's signing identity, issued by the current CA on first use."""
        authority = await self.authority()
        authority_fingerprint = ca.fingerprint(authority.certificate_pem)
        stored = await session.get(SigningIdentity, caller.user_id)
        if stored is not None and stored.authority_fingerprint == authority_fingerprint:
            return ca.SigningIdentity(
                certificate_pem=stored.certificate_pem.encode(), key_pem=stored.key_pem.encode()
            )
        issued = await asyncio.to_thread(
            ca.issue_identity,
            authority=authority,
            username=caller.username,
            display_name=caller.display_name,
            organisation=caller.org_name,
            secret=self._secret,
        )
        if stored is None:
            stored = SigningIdentity(user_id=caller.user_id)
            session.add(stored)
        stored.certificate_pem = issued.certificate_pem.decode()
        stored.key_pem = issued.key_pem.decode()
        stored.fingerprint = ca.fingerprint(issued.certificate_pem)
        stored.authority_fingerprint = authority_fingerprint
        await session.flush()
        return issued

    async def render_and_sign(
        self, *, record: Mapping[str, Any], identity: ca.SigningIdentity, signed_at: datetime
    ) -> bytes:
        """The report's PDF, signed (PAdES) with the record attached; off the event loop."""
        await self.authority()
        signer = self._signer
        assert signer is not None

        def work() -> bytes:
            pdf = render_report_pdf(record)
            return signer.sign(pdf=pdf, record=record, identity=identity, signed_at=signed_at)

        return await asyncio.to_thread(work)

    async def verify(self, pdf: bytes) -> Verification:
        """Verify a report PDF against this deployment's CA."""
        authority = await self.authority()
        return await asyncio.to_thread(
            verify_report_pdf, pdf, trust_anchors=(authority.certificate,)
        )


async def preview(record: Mapping[str, Any]) -> bytes:
    """The PDF of a draft, unsigned: the layout of the final report."""
    return await asyncio.to_thread(render_report_pdf, record)
