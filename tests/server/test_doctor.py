"""doorstep doctor: where the secret key lives."""

from __future__ import annotations

from pathlib import Path

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
