"""PAdES signing: pdfsig and pyHanko accept the signature; the record rides inside, exactly."""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from server.reports.authority import (
    Authority,
    SigningIdentity,
    issue_identity,
    load_or_create_authority,
)
from server.reports.pades import ReportSigner
from server.reports.pdf import render_report_pdf
from server.reports.record import ATTACHMENT_NAME, RECORD_FORMAT, canonical_json
from tests.server.reports.test_report_pdf import sample_record
from tests.support import require_tool

SECRET = b"deployment secret key for the tests, 32+ bytes"
SIGNED_AT = datetime(2026, 12, 1, 10, 12, 3, tzinfo=UTC)


@dataclass(frozen=True)
class Signed:
    """A signed report and what made it."""

    authority: Authority
    identity: SigningIdentity
    signer: ReportSigner
    record: dict[str, Any]
    unsigned: bytes
    pdf: bytes


def signed_report(directory: Path, **changes: Any) -> Signed:
    """A deployment CA in `directory`, Dr Hart's identity and one report signed by him."""
    authority = load_or_create_authority(directory=directory, secret=SECRET)
    identity = issue_identity(
        authority=authority,
        username="dr.heart",
        display_name="Dr Hart",
        organisation="City Hospital",
        secret=SECRET,
    )
    signer = ReportSigner(authority=authority, secret=SECRET)
    record = sample_record(**changes)
    unsigned = render_report_pdf(record)
    pdf = signer.sign(pdf=unsigned, record=record, identity=identity, signed_at=SIGNED_AT)
    return Signed(authority, identity, signer, record, unsigned, pdf)


def embedded_record(pdf: bytes) -> bytes:
    """The bytes of the report.json attached to a PDF (its last revision)."""
    reader = PdfFileReader(io.BytesIO(pdf))
    names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == ATTACHMENT_NAME
    spec = names[1]
    assert spec["/AFRelationship"] == "/Data"
    stream = spec["/EF"]["/F"]
    assert stream["/Subtype"] == "/application/json"
    assert reader.root["/AF"][0]["/F"] == ATTACHMENT_NAME
    data: bytes = stream.data
    return data


def pdfsig(pdf: bytes, directory: Path, *, trusted_ca: bytes | None) -> str:
    """pdfsig's report on a PDF, with an NSS database that trusts `trusted_ca` (or nothing).

    Not `-no-ocsp`: poppler 22.12 then answers "Unknown issue with Certificate" for a trusted
    chain. The certificates name no OCSP responder, so nothing is fetched either way.
    """
    tool = require_tool("pdfsig")
    database = directory / "nss"
    database.mkdir()
    certutil = require_tool("certutil")
    subprocess.run(
        [certutil, "-N", "-d", f"sql:{database}", "--empty-password"], check=True, timeout=60
    )
    if trusted_ca is not None:
        (directory / "ca.pem").write_bytes(trusted_ca)
        trust = ["-A", "-n", "doorstep", "-t", "CT,C,C", "-i", str(directory / "ca.pem")]
        subprocess.run(
            [certutil, *trust, "-d", f"sql:{database}"],
            check=True,
            timeout=60,
        )
    path = directory / "signed.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        [tool, "-nssdir", f"sql:{database}", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def test_pdfsig_says_valid_and_trusted_with_the_deployment_ca(tmp_path: Path) -> None:
    signed = signed_report(tmp_path / "signing")
    (tmp_path / "trusted").mkdir()
    report = pdfsig(signed.pdf, tmp_path / "trusted", trusted_ca=signed.authority.certificate_pem)
    assert "Signature Field Name: DoorstepReport" in report
    assert "Signer Certificate Common Name: Dr Hart" in report
    assert "Signature Type: ETSI.CAdES.detached" in report
    assert "Signing Hash Algorithm: SHA-256" in report
    assert "Total document signed" in report
    assert "Signature is Valid." in report
    assert "Certificate is Trusted." in report
    (tmp_path / "untrusted").mkdir()
    report = pdfsig(signed.pdf, tmp_path / "untrusted", trusted_ca=None)
    assert "Signature is Valid." in report
    assert "Certificate is Trusted." not in report


def test_pdfsig_sees_a_changed_byte(tmp_path: Path) -> None:
    signed = signed_report(tmp_path / "signing")
    position = signed.pdf.index(b"/Producer")
    changed = bytearray(signed.pdf)
    changed[position] ^= 0x01
    (tmp_path / "nss-home").mkdir()
    report = pdfsig(bytes(changed), tmp_path / "nss-home", trusted_ca=None)
    assert "Signature is Valid." not in report
    assert "Digest Mismatch" in report or "Invalid" in report


def test_pyhanko_validator_accepts_with_the_ca_as_trust_anchor(tmp_path: Path) -> None:
    signed = signed_report(tmp_path / "signing")
    other = load_or_create_authority(directory=tmp_path / "other", secret=SECRET)
    reader = PdfFileReader(io.BytesIO(signed.pdf))
    (signature,) = reader.embedded_signatures

    def status(ca: Authority) -> Any:
        root = asn1_x509.Certificate.load(ca.certificate.public_bytes(serialization.Encoding.DER))
        return validate_pdf_signature(
            signature, signer_validation_context=ValidationContext(trust_roots=[root])
        )

    good = status(signed.authority)
    assert good.bottom_line, good.pretty_print_details()
    assert good.intact
    assert good.valid
    assert good.trusted
    assert good.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert good.md_algorithm == "sha256"
    assert good.signer_reported_dt == SIGNED_AT
    assert signature.field_name == "DoorstepReport"
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    embedded = {c.subject.human_friendly for c in signature.other_embedded_certs}
    assert embedded == {"Common Name: Doorstep Reporting CA"}
    assert not status(other).trusted


def test_signed_file_is_the_rendered_file_plus_one_update(tmp_path: Path) -> None:
    signed = signed_report(tmp_path / "signing")
    assert signed.pdf.startswith(signed.unsigned)
    reader = PdfFileReader(io.BytesIO(signed.pdf))
    assert reader.xrefs.total_revisions == 2
    (signature,) = reader.embedded_signatures
    assert signature.signed_revision == 1


def test_record_survives_exactly(tmp_path: Path) -> None:
    hostile = '<script>) Tj ET endstream endobj %%EOF 王^小明 \u2028 "quoted" \\ é'
    signed = signed_report(tmp_path / "signing", findings=hostile)
    data = embedded_record(signed.pdf)
    assert data == canonical_json(signed.record)
    assert signed.record["format"] == RECORD_FORMAT


def test_signing_time_is_the_records(tmp_path: Path) -> None:
    signed = signed_report(tmp_path / "signing")
    reader = PdfFileReader(io.BytesIO(signed.pdf))
    (signature,) = reader.embedded_signatures
    assert signature.self_reported_timestamp == SIGNED_AT
    assert signature.sig_object["/M"] == "D:20261201101203Z"


def test_cached_signer_signs_again_and_others_sign_too(tmp_path: Path) -> None:
    signed = signed_report(tmp_path / "signing")
    again = signed.signer.sign(
        pdf=signed.unsigned, record=signed.record, identity=signed.identity, signed_at=SIGNED_AT
    )
    assert embedded_record(again) == canonical_json(signed.record)
    colleague = issue_identity(
        authority=signed.authority,
        username="dr.lung",
        display_name="Dr Lung",
        organisation="City Hospital",
        secret=SECRET,
    )
    record = sample_record(signer={"username": "dr.lung", "display_name": "Dr Lung"})
    other = signed.signer.sign(
        pdf=render_report_pdf(record), record=record, identity=colleague, signed_at=SIGNED_AT
    )
    (signature,) = PdfFileReader(io.BytesIO(other)).embedded_signatures
    assert signature.signer_cert.subject.native["common_name"] == "Dr Lung"


def test_a_naive_signing_time_is_refused(tmp_path: Path) -> None:
    signed = signed_report(tmp_path / "signing")
    with pytest.raises(ValueError, match="aware"):
        signed.signer.sign(
            pdf=signed.unsigned,
            record=signed.record,
            identity=signed.identity,
            signed_at=datetime(2026, 12, 1, 10, 12, 3),
        )


def test_a_record_with_nan_cannot_be_signed(tmp_path: Path) -> None:
    signed = signed_report(tmp_path / "signing")
    record = sample_record(measurements={"qt_ms": float("nan")})
    with pytest.raises(ValueError, match="Out of range float"):
        signed.signer.sign(
            pdf=signed.unsigned, record=record, identity=signed.identity, signed_at=SIGNED_AT
        )
    with pytest.raises(ValueError, match="Out of range float"):
        canonical_json({"x": float("inf")})


def test_canonical_json_is_the_shared_rule() -> None:
    assert canonical_json({"b": 1, "a": ["é", None, 1.5, True]}) == (
        '{"a":["é",null,1.5,true],"b":1}'.encode()
    )
