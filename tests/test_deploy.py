"""The compose files: DICOM DIMSE is published only by the file that requires DICOM TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _doorstep_service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())["services"]["doorstep"]
    return service


def test_the_compose_file_does_not_publish_dimse() -> None:
    ports = _doorstep_service("docker-compose.yml")["ports"]
    assert ports == ["8080:8080"]


def test_the_dicom_tls_file_publishes_dimse_only_with_tls_configured() -> None:
    service = _doorstep_service("deploy/compose.dicom-tls.yml")
    assert service["ports"] == ["11112:11112"]
    for name in ("DOORSTEP_DICOM_TLS_CERT", "DOORSTEP_DICOM_TLS_KEY"):
        assert service["environment"][name].startswith(f"${{{name}:?"), name
    assert service["volumes"] == ["./deploy/dicom-tls:/etc/doorstep/dicom-tls:ro"]
    example = (ROOT / "deploy" / "doorstep.env.example").read_text()
    assert "#DOORSTEP_DICOM_TLS_CERT=/etc/doorstep/dicom-tls/" in example
