"""Speed of signed reports: render + sign (cached key), the first sign (cold key), verification.

`measure(n)` returns {"render_sign_p50_ms", "render_sign_p95_ms", "sign_only_p50_ms",
"sign_unreserved_p50_ms", "first_sign_ms", "verify_p50_ms", "verify_p95_ms", ...}.
"first_sign_ms" is a new ReportSigner's first report (its key decrypted and loaded);
"sign_unreserved_p50_ms" signs through pyHanko's own sign_pdf without a reserved signature
size (pyHanko then makes a dummy signature first to measure the CMS), for comparison.
Run alone: python benchmarks/_signing.py [--n 50]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: E402
from pyhanko.sign import fields, signers  # noqa: E402

from server.reports import pades  # noqa: E402
from server.reports.authority import issue_identity, load_or_create_authority  # noqa: E402
from server.reports.pades import ReportSigner  # noqa: E402
from server.reports.pdf import render_report_pdf  # noqa: E402
from server.reports.verification import verify_report_pdf  # noqa: E402

SECRET = b"benchmark secret key, not for production use"
SIGNED_AT = datetime(2026, 12, 1, 10, 12, 3, tzinfo=UTC)


def _record(number: int) -> dict[str, Any]:
    """A realistic ECG report record (12 instances), different per number."""
    return {
        "format": "doorstep-report/1",
        "report_id": number,
        "kind": "report",
        "amends": None,
        "request": {
            "id": number,
            "specialty": "cardiology",
            "priority": "stat",
            "question": "Chest pain, rule out STEMI",
            "requested_at": "2026-12-01T10:00:00Z",
            "requested_by": "gp.river",
            "clinic": "River Clinic",
        },
        "patient": {"id": f"A-{number}", "name": "Able^Alice", "birth_date": "1970-01-01"},
        "study": {
            "study_uid": f"1.2.826.0.1.3680043.10.1.{number}",
            "accession_number": "",
            "study_date": "2026-11-30",
            "description": "Resting ECG",
            "modalities": ["ECG"],
        },
        "signer": {
            "username": "dr.heart",
            "display_name": "Dr Hart",
            "organisation": "City Hospital",
            "specialties": ["cardiology"],
        },
        "signed_at": "2026-12-01T10:12:03Z",
        "findings": f"Sinus rhythm, report {number}. " * 20,
        "impression": "Normal ECG.",
        "text": "",
        "measurements": {"heart_rate_bpm": 61.1, "pr_ms": 152, "qrs_ms": 99, "qtc_ms": 402.5},
        "instances": [
            {"sop_instance_uid": f"1.2.826.0.1.3680043.10.1.{number}.{i}", "sha256": "ab" * 32}
            for i in range(12)
        ],
    }


def _percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values lie (nearest rank), in ms."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 2)


def _unreserved_sign(signer: ReportSigner, identity: Any, pdf: bytes, record: Any) -> float:
    """Seconds for a sign through pyHanko's own sign_pdf (no bytes_reserved), signer cached."""
    pdf_signer, _ = signer._signer(identity)
    began = time.perf_counter()
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    pades._embed_record(writer=writer, record=record, signed_at=SIGNED_AT)
    signers.PdfSigner(
        signers.PdfSignatureMetadata(
            field_name=pades.FIELD_NAME,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
        ),
        signer=pdf_signer,
    ).sign_pdf(writer)
    return time.perf_counter() - began


def measure(n: int = 50) -> dict[str, float]:
    """p50/p95 of render+sign per report (key cached), the first sign, verification p50/p95."""
    logging.getLogger("pyhanko").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as directory:
        authority = load_or_create_authority(directory=Path(directory), secret=SECRET)
        identity = issue_identity(
            authority=authority,
            username="dr.heart",
            display_name="Dr Hart",
            organisation="City Hospital",
            secret=SECRET,
        )
        render_report_pdf(_record(0))  # fonts registered once per process
        signer = ReportSigner(authority=authority, secret=SECRET)
        began = time.perf_counter()
        signer.sign(
            pdf=render_report_pdf(_record(0)),
            record=_record(0),
            identity=identity,
            signed_at=SIGNED_AT,
        )
        first = time.perf_counter() - began
        both: list[float] = []
        sign_only: list[float] = []
        signed: list[bytes] = []
        for number in range(1, n + 1):
            record = _record(number)
            began = time.perf_counter()
            pdf = render_report_pdf(record)
            rendered = time.perf_counter()
            signed.append(
                signer.sign(pdf=pdf, record=record, identity=identity, signed_at=SIGNED_AT)
            )
            done = time.perf_counter()
            both.append(done - began)
            sign_only.append(done - rendered)
        unreserved = [
            _unreserved_sign(signer, identity, render_report_pdf(_record(i)), _record(i))
            for i in range(1, n + 1)
        ]
        verify: list[float] = []
        for pdf in signed:
            began = time.perf_counter()
            result = verify_report_pdf(pdf, trust_anchors=[authority.certificate])
            verify.append(time.perf_counter() - began)
            assert result.valid, result.problems
    return {
        "render_sign_p50_ms": _percentile(both, 0.5),
        "render_sign_p95_ms": _percentile(both, 0.95),
        "sign_only_p50_ms": _percentile(sign_only, 0.5),
        "first_sign_ms": round(first * 1000, 2),
        "sign_unreserved_p50_ms": _percentile(unreserved, 0.5),
        "verify_p50_ms": _percentile(verify, 0.5),
        "verify_p95_ms": _percentile(verify, 0.95),
        "reports": float(n),
        "mean_render_sign_ms": round(statistics.fmean(both) * 1000, 2),
    }


def main() -> None:
    """Print one JSON line of figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50)
    options = parser.parse_args()
    print(json.dumps({"benchmark": "signing", **measure(options.n)}))


if __name__ == "__main__":
    main()
