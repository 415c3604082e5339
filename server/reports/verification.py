"""Offline verification of a signed report PDF: signature, coverage, trust and the embedded record.

Validation uses pyHanko's validator at the current time without fetching revocation data
(the deployment's certificates name no CRL or OCSP responder). Synchronous: pyHanko runs its
own event loop per call, so call it from a worker thread, never on a running loop.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from server.reports.record import (
    ATTACHMENT_NAME,
    RECORD_FORMAT,
    canonical_json,
    refuse_running_loop,
)

SHA256 = bytes.fromhex("300d06096086480165030402010500")
ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
ENCAPSULATED_DATA = bytes.fromhex("300b06092a864886f70d010701")
EMBEDDED_TRUST = "the CA certificate embedded in the file; not independently trusted"
TIME_TOLERANCE_SECONDS = 5.0
DER_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Verification:
    """What a signed report's verification found; valid only when no problem was found."""

    valid: bool
    signer: str | None
    signer_username: str | None
    signed_at: str | None
    instances: list[dict[str, str]]
    problems: list[str]
    record: dict[str, Any] | None
    trust: str


@dataclass(slots=True)
class _Findings:
    """The verification's findings as they accumulate."""

    problems: list[str]
    trust: str
    signer: str | None = None
    signer_username: str | None = None
    signed_at: datetime | None = None
    record: dict[str, Any] | None = None

    def result(self) -> Verification:
        """The findings as a Verification."""
        record = self.record
        return Verification(
            valid=not self.problems,
            signer=self.signer,
            signer_username=self.signer_username,
            signed_at=f"{self.signed_at:%Y-%m-%dT%H:%M:%SZ}" if self.signed_at else None,
            instances=_instances(record) if record is not None else [],
            problems=list(self.problems),
            record=record,
            trust=self.trust,
        )


def verify_report_pdf(
    pdf: bytes, *, trust_anchors: Sequence[x509.Certificate] = ()
) -> Verification:
    """Verify a signed report; never raises on damaged or hostile input.

    RuntimeError when called on a running event loop (pyHanko runs its own): use a thread.
    """
    refuse_running_loop("verify_report_pdf")
    trust = (
        "the trust anchors given: " + "; ".join(_name(a) for a in trust_anchors)
        if trust_anchors
        else EMBEDDED_TRUST
    )
    findings = _Findings(problems=[], trust=trust)
    try:
        _verify(pdf=pdf, trust_anchors=trust_anchors, findings=findings)
    except Exception as error:  # hostile input may break any parser; report, never raise
        findings.problems.append(
            f"the file cannot be read as a signed report ({type(error).__name__}: {error})"
        )
    return findings.result()


def _verify(*, pdf: bytes, trust_anchors: Sequence[x509.Certificate], findings: _Findings) -> None:
    """Run every check, adding each failure to the findings."""
    problems = findings.problems
    if not pdf.startswith(b"%PDF-"):
        problems.append("the file is not a PDF")
        return
    try:
        reader = PdfFileReader(io.BytesIO(pdf))
        signatures = reader.embedded_signatures
    except Exception as error:
        problems.append(f"the PDF cannot be read; it is damaged or truncated ({error})")
        return
    if not signatures:
        problems.append("the file holds no signature")
        return
    if len(signatures) > 1:
        problems.append(
            f"the file holds {len(signatures)} signatures; a report carries exactly one"
        )
    signature = signatures[0]
    _check_contents(pdf=pdf, signature=signature, findings=findings)
    _check_cms(signature=signature, trust_anchors=trust_anchors, findings=findings)
    status = _validate(signature=signature, trust_anchors=trust_anchors, findings=findings)
    if status is not None:
        _check_status(status=status, findings=findings)
    record = _signed_record(reader=reader, signature=signature, findings=findings)
    if record is not None:
        _check_record(record=record, findings=findings)


def _check_contents(*, pdf: bytes, signature: EmbeddedPdfSignature, findings: _Findings) -> None:
    """The unsigned gap holds exactly the CMS as upper-case hex, padded with zeros only."""
    byte_range = [int(value) for value in signature.byte_range]
    if len(byte_range) != 4:
        findings.problems.append("the signature's byte range is malformed")
        return
    gap = pdf[byte_range[0] + byte_range[1] : byte_range[2]]
    contents = bytes(signature.pkcs7_content)
    length = _der_length(contents)
    if (
        gap != b"<" + contents.hex().upper().encode("ascii") + b">"
        or length is None
        or contents[length:].strip(b"\0")
        or not _is_der(contents[:length])
    ):
        findings.problems.append(
            "the signature's contents were changed after signing (not the CMS it was written as)"
        )


def _check_cms(
    *,
    signature: EmbeddedPdfSignature,
    trust_anchors: Sequence[x509.Certificate],
    findings: _Findings,
) -> None:
    """The CMS parts the signature value does not cover are exactly what Doorstep writes.

    A SignedData's digest algorithm list, content type, version numbers and certificates lie
    outside the signed attributes; they are pinned here so that no byte of them can change.
    """
    signed_data = signature.signed_data
    signer_infos = signed_data["signer_infos"]
    certificates = signed_data["certificates"]
    changed = (
        signed_data["version"].native != "v1"
        or signed_data["encap_content_info"].dump() != ENCAPSULATED_DATA
        or signed_data["crls"].native is not None
        or len(signer_infos) != 1
        or [a.dump() for a in signed_data["digest_algorithms"]] != [SHA256]
    )
    if not changed:
        signer_info = signer_infos[0]
        changed = (
            signer_info["version"].native != "v1"
            or signer_info["digest_algorithm"].dump() != SHA256
            or signer_info["signature_algorithm"].dump() != ECDSA_SHA256
            or signer_info["unsigned_attrs"].native is not None
            or not _names_signer(signer_info, signature)
        )
    embedded = []
    for choice in certificates if certificates.native is not None else []:
        if choice.name != "certificate":
            changed = True
            continue
        # the signature BIT STRING's unused-bits octet lies outside what the issuer signed
        if choice.chosen["signature_value"].contents[:1] != b"\0":
            changed = True
            continue
        try:
            embedded.append(x509.load_der_x509_certificate(choice.chosen.dump()))
        except ValueError:
            changed = True
    candidates = [*embedded, *trust_anchors]
    for certificate in [] if changed else embedded:
        if not any(c.subject == certificate.issuer for c in candidates):
            findings.problems.append(
                f"the certificate of {certificate.subject.rfc4514_string()} cannot be checked: "
                f"its issuer {certificate.issuer.rfc4514_string()} is neither in the file "
                "nor a trust anchor"
            )
        elif not _issued_within(certificate, candidates):
            changed = True
    if changed:
        findings.problems.append(
            "the signature's CMS structure was changed after signing "
            "(its unsigned parts differ from what was written)"
        )


def _names_signer(signer_info: Any, signature: EmbeddedPdfSignature) -> bool:
    """The SignerInfo's sid is byte for byte its certificate's issuer and serial number.

    Name matching is case-insensitive, so a changed letter would still find the certificate.
    """
    sid = signer_info["sid"]
    if sid.name != "issuer_and_serial_number":
        return False
    try:
        tbs = signature.signer_cert["tbs_certificate"]
    except Exception:  # pyHanko finds no certificate (or an altered one) for the sid
        return False
    return bool(
        sid.chosen["issuer"].dump() == tbs["issuer"].dump()
        and sid.chosen["serial_number"].dump() == tbs["serial_number"].dump()
    )


def _issued_within(certificate: x509.Certificate, issuers: Sequence[x509.Certificate]) -> bool:
    """True when one of the issuers named as its issuer verifiably signed it."""
    for issuer in issuers:
        if issuer.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def _is_der(data: bytes) -> bool:
    """True when the data is exactly one well-formed DER element (lengths minimal and exact).

    Every constructed element's children must tile its contents; no indefinite lengths, no
    end-of-contents octets. A length grown into the zero padding (asn1crypto accepts it) fails.
    """
    return _der_element(data, 0, 0) == len(data)


def _der_element(data: bytes, at: int, depth: int) -> int | None:
    """The offset just past the DER element at `at`, or None when it is not strict DER."""
    if depth > DER_DEPTH or at + 2 > len(data) or data[at] == 0:
        return None
    tag, position = data[at], at + 1
    if tag & 0x1F == 0x1F:  # high tag number form
        while position < len(data) and data[position] & 0x80:
            position += 1
        position += 1
    if position >= len(data):
        return None
    first = data[position]
    position += 1
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        octets = data[position : position + count]
        if count == 0 or count > 4 or len(octets) != count or octets[0] == 0:
            return None
        length = int.from_bytes(octets, "big")
        if length < 0x80:
            return None
        position += count
    end = position + length
    if end > len(data):
        return None
    if tag & 0x20:  # constructed: the children tile the contents exactly
        while position < end:
            child_end = _der_element(data[:end], position, depth + 1)
            if child_end is None:
                return None
            position = child_end
    return end


def _der_length(data: bytes) -> int | None:
    """The length of the DER element at the start of `data` (header included), or None."""
    if len(data) < 2:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _validate(
    *,
    signature: EmbeddedPdfSignature,
    trust_anchors: Sequence[x509.Certificate],
    findings: _Findings,
) -> PdfSignatureStatus | None:
    """pyHanko's validation of the signature against the anchors (or the embedded CA)."""
    if trust_anchors:
        roots = [
            asn1_x509.Certificate.load(a.public_bytes(serialization.Encoding.DER))
            for a in trust_anchors
        ]
    else:
        roots = [c for c in signature.other_embedded_certs if c.ca and c.self_signed == "maybe"]
        roots = roots or [c for c in signature.other_embedded_certs if c.ca]
        if not roots:
            findings.problems.append("the signature carries no CA certificate to check it against")
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    try:
        return validate_pdf_signature(signature, signer_validation_context=context, skip_diff=True)
    except Exception as error:
        findings.problems.append(f"the signature cannot be checked ({error})")
        return None


def _check_status(*, status: PdfSignatureStatus, findings: _Findings) -> None:
    """Integrity, coverage and trust of the signature; the signer and the signing time."""
    problems = findings.problems
    if not status.intact:
        problems.append("the report was changed after it was signed (its digest does not match)")
    elif not status.valid:
        problems.append(
            "the signature value does not match the signer's certificate "
            "(the report or its signature was changed after signing)"
        )
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problems.append(
            "the signature does not cover the whole file: "
            "bytes were added after signing (an incremental update or appended data)"
        )
    if not status.trusted:
        problems.append(
            f"the signer's certificate does not chain to a trusted CA ({findings.trust}): "
            + str(getattr(status.trust_problem_indic, "name", "untrusted"))
            .lower()
            .replace("_", " ")
        )
    certificate = x509.load_der_x509_certificate(status.signing_cert.dump())
    findings.signer = _attribute(certificate, NameOID.COMMON_NAME)
    findings.signer_username = _attribute(certificate, NameOID.USER_ID)
    if findings.signer_username is None:
        problems.append("the signer's certificate names no username (UID)")
    if status.signer_reported_dt is None:
        problems.append("the signature carries no signing time")
    else:
        findings.signed_at = status.signer_reported_dt.astimezone(UTC)


def _signed_record(
    *, reader: PdfFileReader, signature: EmbeddedPdfSignature, findings: _Findings
) -> bytes | None:
    """The embedded record's bytes as of the signed revision."""
    signed_root = reader.get_historical_resolver(signature.signed_revision).root
    found = _attachments(signed_root)
    if len(found) > 1:
        findings.problems.append(f"the file holds {len(found)} records named {ATTACHMENT_NAME}")
    if found:
        return found[0]
    if _attachments(reader.root):
        findings.problems.append("the report record was added to the file after it was signed")
    else:
        findings.problems.append(f"the file holds no embedded report record ({ATTACHMENT_NAME})")
    return None


def _attachments(root: generic.DictionaryObject) -> list[bytes]:
    """The data of every embedded file named ATTACHMENT_NAME in a (flat) name tree."""
    names = _entry(root, "/Names")
    tree = _entry(names, "/EmbeddedFiles")
    entries = _entry(tree, "/Names")
    if not isinstance(entries, generic.ArrayObject):
        return []
    found = []
    for position in range(0, len(entries) - 1, 2):
        name = _resolved(entries.raw_get(position))
        if isinstance(name, generic.TextStringObject):
            text = str(name)
        elif isinstance(name, generic.ByteStringObject):
            text = bytes(name).decode("latin-1")
        else:
            continue
        if text != ATTACHMENT_NAME:
            continue
        stream = _entry(_entry(_resolved(entries.raw_get(position + 1)), "/EF"), "/F")
        if isinstance(stream, generic.StreamObject):
            found.append(stream.data)
    return found


def _entry(container: object, key: str) -> object:
    """A dictionary's entry, resolved (None when the container is no dictionary or lacks it)."""
    if not isinstance(container, generic.DictionaryObject) or key not in container:
        return None
    return _resolved(container.raw_get(key))


def _resolved(value: object) -> object:
    """The object an indirect reference points at, else the value itself."""
    if not isinstance(value, generic.IndirectObject):
        return value
    reference: Any = value
    return reference.get_object()


def _check_record(*, record: bytes, findings: _Findings) -> None:
    """The record is canonical JSON of the expected format and agrees with the signature."""
    problems = findings.problems
    try:
        parsed = json.loads(record.decode("utf-8"))
        canonical = isinstance(parsed, dict) and canonical_json(parsed) == record
    except ValueError:
        problems.append("the embedded record is not JSON")
        return
    if not canonical:
        problems.append("the embedded record is not canonical JSON")
        return
    findings.record = parsed
    if parsed.get("format") != RECORD_FORMAT:
        problems.append(f"the embedded record is not of the format {RECORD_FORMAT}")
    signer = parsed.get("signer")
    username = signer.get("username") if isinstance(signer, dict) else None
    if findings.signer_username is not None and username != findings.signer_username:
        problems.append(
            f"the record names the signer {username!r} but the certificate "
            f"{findings.signer_username!r}"
        )
    claimed = _parse_time(parsed.get("signed_at"))
    if claimed is None:
        problems.append("the record's signed_at is not an ISO 8601 time")
    elif findings.signed_at is not None:
        apart = abs((claimed - findings.signed_at).total_seconds())
        if apart > TIME_TOLERANCE_SECONDS:
            problems.append(
                f"the record's signed_at differs from the signature's signing time by {apart:.0f} s"
            )


def _instances(record: dict[str, Any]) -> list[dict[str, str]]:
    """The record's instances (SOP Instance UID and SHA-256), text values only."""
    instances = record.get("instances")
    if not isinstance(instances, list):
        return []
    return [
        {str(k): v for k, v in item.items() if isinstance(v, str)}
        for item in instances
        if isinstance(item, dict)
    ]


def _parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _attribute(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    """The first value of a subject attribute, as text."""
    values = certificate.subject.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _name(certificate: x509.Certificate) -> str:
    """A certificate's subject common name and SHA-256 fingerprint."""
    digest = certificate.fingerprint(hashes.SHA256()).hex()
    subject = certificate.subject.rfc4514_string()
    common_name = _attribute(certificate, NameOID.COMMON_NAME) or subject
    return f"{common_name} (SHA-256 {digest})"
