"""doorstep doctor: where the secret key lives."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from server import doctor
from server.settings import Settings


def _secret_key_row(settings: Settings) -> tuple[str, str]:
    [(status, _, text)] = [r for r in doctor.checks(settings) if r[1] == "secret key"]
    return status, text


def test_a_key_in_the_data_directory_is_a_warning(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.resolved_secret_key()  # generated under the data dir, as the embedded default does
    status, text = _secret_key_row(settings)
    assert status == doctor.WARN
    assert "in the data directory" in text
    assert "DOORSTEP_SECRET_KEY_FILE" in text


def test_a_key_from_the_environment_or_a_file_apart_is_fine(tmp_path: Path) -> None:
    key_file = tmp_path / "etc" / "secret_key"
    key_file.parent.mkdir()
    key_file.write_text("a-key-kept-apart\n")
    from_file = Settings(data_dir=tmp_path / "data", secret_key_file=key_file)
    assert _secret_key_row(from_file) == (doctor.OK, f"from {key_file}")
    assert from_file.resolved_secret_key() == b"a-key-kept-apart"
    from_env = Settings(data_dir=tmp_path / "data", secret_key=SecretStr("k"))
    assert _secret_key_row(from_env) == (doctor.OK, "from DOORSTEP_SECRET_KEY")


def test_a_missing_key_file_fails(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key_file=tmp_path / "absent")
    status, text = _secret_key_row(settings)
    assert status == doctor.FAIL
    assert "is not a readable file" in text


def _dicom_row(settings: Settings) -> tuple[str, str]:
    [(status, _, text)] = [r for r in doctor.checks(settings) if r[1].startswith("dicom")]
    return status, text


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "doorstep.lan"])
def test_a_dimse_listener_beyond_loopback_without_tls_is_a_warning(
    tmp_path: Path, host: str
) -> None:
    status, text = _dicom_row(Settings(data_dir=tmp_path, host=host, dicom_port=11112))
    assert status == doctor.WARN
    assert "reachable beyond loopback without TLS" in text
    assert "DOORSTEP_DICOM_TLS_CERT" in text


@pytest.mark.parametrize(
    ("host", "port"), [("127.0.0.1", 11112), ("::1", 11112), ("localhost", 104), ("0.0.0.0", 0)]
)
def test_a_loopback_or_disabled_dimse_listener_is_fine(
    tmp_path: Path, host: str, port: int
) -> None:
    assert _dicom_row(Settings(data_dir=tmp_path, host=host, dicom_port=port))[0] == doctor.OK


def test_dimse_over_tls_beyond_loopback_is_fine_and_its_files_are_checked(tmp_path: Path) -> None:
    for name in ("server.crt", "server.key", "ca.crt"):
        (tmp_path / name).write_text("pem")
    tls = {"dicom_tls_cert": tmp_path / "server.crt", "dicom_tls_key": tmp_path / "server.key"}
    status, text = _dicom_row(Settings(data_dir=tmp_path, host="0.0.0.0", **tls))
    assert (status, "over TLS" in text, "address only" in text) == (doctor.OK, True, True)
    required = Settings(data_dir=tmp_path, host="0.0.0.0", dicom_tls_ca=tmp_path / "ca.crt", **tls)
    assert _dicom_row(required) == (
        doctor.OK,
        "DIMSE on 0.0.0.0:11112 over TLS, client certificates required",
    )
    missing = Settings(data_dir=tmp_path, dicom_tls_ca=tmp_path / "absent.crt", **tls)
    assert _dicom_row(missing)[0] == doctor.FAIL
    half = Settings(data_dir=tmp_path, dicom_tls_cert=tmp_path / "server.crt")
    assert _dicom_row(half)[0] == doctor.FAIL
