"""Verification of a signed report: every change, addition or mismatch is found and named."""

from __future__ import annotations

import asyncio
import io
import logging
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import embed, generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from server.reports.authority import (
    import_authority,
    issue_identity,
    load_identity_key,
    load_or_create_authority,
)
from server.reports.pades import ReportSigner
from server.reports.pdf import render_report_pdf
from server.reports.record import ATTACHMENT_NAME, canonical_json
from server.reports.verification import EMBEDDED_TRUST, Verification, verify_report_pdf
from tests.server.reports.test_authority import external_ca
from tests.server.reports.test_pades import SECRET, SIGNED_AT, Signed, signed_report
from tests.server.reports.test_report_pdf import sample_record


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    """One signed report for the module's read-only checks."""
    return signed_report(tmp_path_factory.mktemp("signing"))


@pytest.fixture(autouse=True)
def _quiet_pyhanko() -> Iterator[None]:
    """pyHanko logs every failed path building with a traceback; the tests expect failures."""
    logger = logging.getLogger("pyhanko")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def _pyhanko_signer(signed: Signed) -> signers.SimpleSigner:
    """A pyHanko signer for the signed report's identity, built directly (for odd files)."""
    key = load_identity_key(identity=signed.identity, secret=SECRET)
    certificate = x509.load_pem_x509_certificate(signed.identity.certificate_pem)
    ca = asn1_x509.Certificate.load(
        signed.authority.certificate.public_bytes(serialization.Encoding.DER)
    )
    store: Any = SimpleCertificateStore  # its constructors are untyped
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(
            certificate.public_bytes(serialization.Encoding.DER)
        ),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=store.from_certs([ca]),
    )


def _attach(writer: IncrementalPdfFileWriter, data: bytes) -> None:
    """Attach `data` as report.json in the writer's update."""
    embed.embed_file(
        writer,
        embed.FileSpec(
            file_spec_string=ATTACHMENT_NAME,
            file_name=ATTACHMENT_NAME,
            embedded_data=embed.EmbeddedFileObject.from_file_data(
                writer, data=data, mime_type="application/json"
            ),
        ),
    )


def _sign_raw(
    signed: Signed, pdf: bytes, attachment: bytes | None, field: str = "DoorstepReport"
) -> bytes:
    """Sign `pdf` with pyHanko directly, attaching `attachment` (if any) in the signed update."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    if attachment is not None:
        _attach(writer, attachment)
    output = signers.PdfSigner(
        signers.PdfSignatureMetadata(
            field_name=field,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
        ),
        signer=_pyhanko_signer(signed),
    ).sign_pdf(writer)
    data: bytes = output.getvalue()
    return data


def _written(writer: Any) -> bytes:
    """The document with the writer's update appended (pyHanko's `write` is untyped)."""
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def _invalid(result: Verification, reason: str) -> None:
    """The verification failed, naming `reason` (a regular expression) among its problems."""
    assert isinstance(result, Verification)
    assert result.valid is False
    assert any(re.search(reason, p) for p in result.problems), result.problems


def test_intact_report_is_valid(signed: Signed) -> None:
    result = verify_report_pdf(signed.pdf)
    assert result.problems == []
    assert result.valid is True
    assert result.signer == "Dr Hart"
    assert result.signer_username == "dr.heart"
    assert result.signed_at == "2026-12-01T10:12:03Z"
    assert result.instances == signed.record["instances"]
    assert result.record == signed.record
    assert result.trust == EMBEDDED_TRUST


def test_the_deployment_ca_as_trust_anchor(signed: Signed) -> None:
    result = verify_report_pdf(signed.pdf, trust_anchors=[signed.authority.certificate])
    assert result.valid, result.problems
    assert "Doorstep Reporting CA" in result.trust
    assert result.trust != EMBEDDED_TRUST


def test_another_ca_as_trust_anchor_is_invalid(signed: Signed, tmp_path: Path) -> None:
    other = load_or_create_authority(directory=tmp_path / "other", secret=SECRET)
    _invalid(
        verify_report_pdf(signed.pdf, trust_anchors=[other.certificate]),
        "does not chain to a trusted CA",
    )


def _positions(pdf: bytes, signed: Signed) -> list[tuple[str, int]]:
    """At least 100 positions: spread over the file, and in every part that matters."""
    reader = PdfFileReader(io.BytesIO(pdf))
    (signature,) = reader.embedded_signatures
    start, length, resume, _ = (int(v) for v in signature.byte_range)
    gap = range(start + length, resume)
    record_start = pdf.index(b"stream", pdf.index(b"/Type /EmbeddedFile")) + len(b"stream\r\n")
    trailer = pdf.rindex(b"xref")
    chosen = [("spread", p) for p in range(0, len(pdf), len(pdf) // 40)]
    chosen += [("header", p) for p in range(0, 9)]
    chosen += [("record stream", record_start + p) for p in range(0, 40, 3)]
    chosen += [("signature contents", p) for p in range(gap.start, gap.stop, len(gap) // 25)]
    chosen += [("signature contents end", p) for p in (gap.stop - 1, gap.stop - 2, gap.start)]
    chosen += [("xref and trailer", p) for p in range(trailer, len(pdf), 12)]
    chosen += [("last bytes", p) for p in range(len(pdf) - 8, len(pdf))]
    assert len(chosen) >= 100
    assert signed.unsigned  # the rendered part is covered by the spread positions
    return chosen


def test_one_changed_byte_anywhere_is_invalid(signed: Signed) -> None:
    for where, position in _positions(signed.pdf, signed):
        changed = bytearray(signed.pdf)
        changed[position] ^= 0x01
        result = verify_report_pdf(bytes(changed))
        assert result.valid is False, (where, position)
        assert result.problems, (where, position)


def test_a_changed_hex_digit_case_in_the_signature_is_invalid(signed: Signed) -> None:
    reader = PdfFileReader(io.BytesIO(signed.pdf))
    (signature,) = reader.embedded_signatures
    start, length, _, _ = (int(v) for v in signature.byte_range)
    contents = signed.pdf[start + length :]
    position = start + length + next(i for i, c in enumerate(contents) if c in b"ABCDEF")
    changed = bytearray(signed.pdf)
    changed[position] = changed[position] + 0x20  # "A" -> "a": the same CMS, other bytes
    _invalid(verify_report_pdf(bytes(changed)), "contents were changed after signing")


def test_unsigned_bits_of_the_cms_cannot_change(signed: Signed) -> None:
    """CMS parts no signature covers; each once let a changed byte pass (found by fuzzing)."""
    reader = PdfFileReader(io.BytesIO(signed.pdf))
    (signature,) = reader.embedded_signatures
    start, length, _, _ = (int(v) for v in signature.byte_range)
    cms = bytes(signature.pkcs7_content)
    signer_info = signature.signer_info
    sid_at = cms.index(signer_info["sid"].dump())
    # (byte offset in the CMS, which hex digit: 0 high / 1 low, xor on that digit's character)
    changes = [
        (3, 0, 0x02),  # the ContentInfo's length, grown into the zero padding
        (cms.index(signature.signed_data["digest_algorithms"].dump()) + 6, 1, 0x01),
        (sid_at + signer_info["sid"].dump().index(b"Doorstep"), 0, 0x02),  # "D" -> "d"
    ]
    for certificate in [signature.signer_cert, *signature.other_embedded_certs]:
        value = certificate["signature_value"]
        at = cms.index(certificate.dump()) + certificate.dump().rindex(value.dump())
        changes.append((at + len(value.dump()) - len(value.contents), 1, 0x01))  # unused bits
    for offset, digit, xor in changes:
        position = start + length + 1 + 2 * offset + digit
        changed = bytearray(signed.pdf)
        changed[position] ^= xor
        assert bytes(changed) != signed.pdf
        _invalid(
            verify_report_pdf(bytes(changed)),
            "CMS structure was changed after signing|contents were changed after signing",
        )


def test_the_reasons_are_plain(signed: Signed) -> None:
    position = signed.pdf.index(b"/Producer")
    changed = bytearray(signed.pdf)
    changed[position + 3] ^= 0x01
    _invalid(verify_report_pdf(bytes(changed)), "the report was changed after it was signed")


def test_appended_bytes_are_invalid(signed: Signed) -> None:
    _invalid(
        verify_report_pdf(signed.pdf + b"\n% appended\n"),
        "does not cover the whole file",
    )


def test_an_incremental_update_after_signing_is_invalid(signed: Signed) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed.pdf))
    writer.root["/Lang"] = generic.TextStringObject("en")
    untyped: Any = writer
    untyped.update_root()
    result = verify_report_pdf(_written(writer))
    _invalid(result, "does not cover the whole file")
    assert result.record == signed.record


def test_a_record_replaced_after_signing_is_invalid(signed: Signed) -> None:
    forged = sample_record(impression="Forged impression.")
    writer = IncrementalPdfFileWriter(io.BytesIO(signed.pdf))
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    spec = names[1]
    spec["/EF"]["/F"] = writer.add_object(
        embed.EmbeddedFileObject.from_file_data(writer, data=canonical_json(forged))
    )
    writer.update_container(spec["/EF"])
    result = verify_report_pdf(_written(writer))
    _invalid(result, "does not cover the whole file")
    assert result.record == signed.record  # what was signed, not the forgery


def test_a_record_added_after_signing_is_invalid(signed: Signed) -> None:
    bare = _sign_raw(signed, signed.unsigned, attachment=None)
    assert verify_report_pdf(bare).problems == [
        "the file holds no embedded report record (report.json)"
    ]
    writer = IncrementalPdfFileWriter(io.BytesIO(bare))
    _attach(writer, canonical_json(signed.record))
    result = verify_report_pdf(_written(writer))
    _invalid(result, "record was added to the file after it was signed")
    _invalid(result, "does not cover the whole file")


@pytest.mark.parametrize(
    ("attachment", "reason"),
    [
        (b'{"format": "doorstep-report/1"}', "not canonical JSON"),
        (b"not json", "not JSON"),
        (b"[1,2]", "not canonical JSON"),
        (canonical_json(sample_record(format="other/2")), "not of the format doorstep-report/1"),
    ],
    ids=["spaces", "not-json", "not-an-object", "wrong-format"],
)
def test_a_bad_record_is_invalid(signed: Signed, attachment: bytes, reason: str) -> None:
    _invalid(verify_report_pdf(_sign_raw(signed, signed.unsigned, attachment)), reason)


def _signed_with(signed: Signed, record: dict[str, Any], **sign: Any) -> bytes:
    """The report re-signed by the same identity over a different record."""
    arguments = {"signed_at": SIGNED_AT, **sign}
    return signed.signer.sign(
        pdf=render_report_pdf(record), record=record, identity=signed.identity, **arguments
    )


def test_a_record_naming_another_signer_is_invalid(signed: Signed) -> None:
    record = sample_record(signer={"username": "dr.other", "display_name": "Dr Other"})
    _invalid(
        verify_report_pdf(_signed_with(signed, record)),
        "names the signer 'dr.other' but the certificate 'dr.heart'",
    )


def test_signing_time_must_agree_with_the_record(signed: Signed) -> None:
    late = _signed_with(signed, signed.record, signed_at=SIGNED_AT + timedelta(seconds=60))
    _invalid(verify_report_pdf(late), "differs from the signature's signing time by 60 s")
    close = _signed_with(signed, signed.record, signed_at=SIGNED_AT + timedelta(seconds=3))
    assert verify_report_pdf(close).valid


def test_a_second_signature_is_invalid(signed: Signed) -> None:
    with pytest.raises(SigningError, match="filled already"):
        signed.signer.sign(
            pdf=signed.pdf, record=signed.record, identity=signed.identity, signed_at=SIGNED_AT
        )
    twice = _sign_raw(signed, signed.pdf, attachment=None, field="Countersignature")
    _invalid(verify_report_pdf(twice), "holds 2 signatures")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a PDF"),
        (b"hello", "not a PDF"),
        (b"%PDF-1.7\n%%EOF\n", "cannot be read|no signature"),
    ],
)
def test_not_a_signed_pdf(data: bytes, reason: str) -> None:
    _invalid(verify_report_pdf(data), reason)


def test_an_unsigned_report_is_invalid(signed: Signed) -> None:
    _invalid(verify_report_pdf(signed.unsigned), "holds no signature")


def test_hostile_files_never_raise(signed: Signed) -> None:
    rng = random.Random(20261201)
    pdf = signed.pdf
    cases: list[bytes] = [pdf[:cut] for cut in range(0, len(pdf), len(pdf) // 60)]
    for _ in range(200):
        mutated = bytearray(pdf)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(mutated))
            action = rng.choice(("flip", "delete", "insert", "digit"))
            if action == "flip":
                mutated[position] = rng.randrange(256)
            elif action == "delete":
                del mutated[position : position + rng.randint(1, 64)]
            elif action == "insert":
                mutated[position:position] = rng.choice(
                    (b"<<", b">>", b" 0 R", b"endobj", b"/Length 999999", b"\x00" * 9)
                )
            else:
                match = rng.choice(list(re.finditer(rb"\d+", bytes(mutated[:4096])) or [None]))
                if match is not None:
                    mutated[match.start() : match.end()] = b"99999999999"
        cases.append(bytes(mutated))
    cases += [
        re.sub(rb"/ByteRange \[[^\]]*\]", b"/ByteRange [0 10 20 30]", pdf),
        pdf.replace(b"/Type /EmbeddedFile", b"/Type /EmbeddedFilX"),
        pdf.replace(b"startxref", b"startxrex"),
        pdf[: pdf.rindex(b"xref")],
    ]
    for case in cases:
        result = verify_report_pdf(case)
        assert isinstance(result, Verification)
        assert result.valid is False
        assert result.problems


async def test_a_running_event_loop_is_refused_plainly(signed: Signed) -> None:
    with pytest.raises(RuntimeError, match=r"asyncio\.to_thread"):
        verify_report_pdf(signed.pdf)
    with pytest.raises(RuntimeError, match=r"asyncio\.to_thread"):
        signed.signer.sign(
            pdf=signed.unsigned, record=signed.record, identity=signed.identity, signed_at=SIGNED_AT
        )
    result = await asyncio.to_thread(verify_report_pdf, signed.pdf)
    assert result.valid, result.problems


def test_an_imported_intermediate_ca_verifies_with_its_root(tmp_path: Path) -> None:
    root, root_key = external_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    intermediate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Reporting Sub CA")]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=300))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    authority = import_authority(
        directory=tmp_path / "signing",
        certificate_pem=intermediate.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        key_password=None,
        secret=SECRET,
    )
    identity = issue_identity(
        authority=authority,
        username="dr.heart",
        display_name="Dr Hart",
        organisation="City Hospital",
        secret=SECRET,
    )
    record = sample_record()
    pdf = ReportSigner(authority=authority, secret=SECRET).sign(
        pdf=render_report_pdf(record), record=record, identity=identity, signed_at=SIGNED_AT
    )
    anchored = verify_report_pdf(pdf, trust_anchors=[root])
    assert anchored.valid, anchored.problems
    _invalid(verify_report_pdf(pdf), "Reporting Sub CA cannot be checked: its issuer")
