"""`doorstep doctor`: configuration and dependency checks an operator can read."""

from __future__ import annotations

import asyncio
import importlib.metadata
import ipaddress
import os
import shutil
import sys
from pathlib import Path

from sqlalchemy import text

from server import db
from server.package_data import migrations_dir, web_dir
from server.settings import Settings

OK, WARN, FAIL = "ok", "warn", "FAIL"
_PACKAGES = ("aiohttp", "sqlalchemy", "pydicom", "jinja2", "pydantic", "alembic", "argon2-cffi")
_TOOLS = {
    "storescu": "dcmtk, to test DICOM peers",
    "chromium": "browser tests",
    "turnserver": "coturn, TURN relay for video consults",
}


def _database(settings: Settings) -> tuple[str, str]:
    async def probe() -> str:
        engine = db.create_engine(settings)
        try:
            async with asyncio.timeout(5), engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            revision = await db.current_revision(engine)
        finally:
            await engine.dispose()
        return revision or "empty (run `doorstep db upgrade`)"

    try:
        return OK, f"{engine_name(settings)} reachable, schema {asyncio.run(probe())}"
    except Exception as error:  # the check reports any failure
        return FAIL, f"{engine_name(settings)} not reachable: {type(error).__name__}: {error}"


def _secret_key(settings: Settings, data_dir: Path) -> tuple[str, str, str]:
    """Where the key is: the environment or a file apart from the data is what production wants."""
    source = settings.secret_key_source
    if source == "environment":
        return OK, "secret key", "from DOORSTEP_SECRET_KEY"
    path = (settings.secret_key_file or data_dir / "secret_key").resolve()
    if source == "file" and not path.is_file():
        return FAIL, "secret key", f"DOORSTEP_SECRET_KEY_FILE {path} is not a readable file"
    if path.is_relative_to(data_dir):
        return (
            WARN,
            "secret key",
            f"in the data directory ({path}): whoever copies the data can forge the audit "
            "log's MACs; in production set DOORSTEP_SECRET_KEY or DOORSTEP_SECRET_KEY_FILE",
        )
    return OK, "secret key", f"from {path}"


def _loopback_only(host: str) -> bool:
    """Whether a listen address is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name (or "" / a wildcard): assume other machines reach it


def _dicom(settings: Settings) -> list[tuple[str, str, str]]:
    """The DIMSE listener: who can reach it, and whether it speaks TLS."""
    if settings.dicom_port == 0:
        return [(OK, "dicom", "DIMSE listener disabled (--dicom-port 0)")]
    where = f"{settings.host}:{settings.dicom_port}"
    paths = (settings.dicom_tls_cert, settings.dicom_tls_key, settings.dicom_tls_ca)
    if any(p is not None for p in paths):
        if not settings.dicom_tls_enabled:
            return [(FAIL, "dicom tls", "set both DOORSTEP_DICOM_TLS_CERT and _KEY (or neither)")]
        missing = [str(p) for p in paths if p is not None and not p.is_file()]
        if missing:
            return [(FAIL, "dicom tls", f"missing files: {', '.join(missing)}")]
        clients = (
            "client certificates required"
            if settings.dicom_tls_ca is not None
            else "no client certificates (DOORSTEP_DICOM_TLS_CA unset): peers by address only"
        )
        return [(OK, "dicom tls", f"DIMSE on {where} over TLS, {clients}")]
    if _loopback_only(settings.host):
        return [(OK, "dicom", f"DIMSE on {where}, loopback only, plain TCP")]
    return [
        (
            WARN,
            "dicom",
            f"DIMSE on {where} is reachable beyond loopback without TLS: patient data "
            "crosses the network in clear and peers are known only by address; set "
            "DOORSTEP_DICOM_TLS_CERT/_KEY/_CA (docs/operations.md, DICOM peers)",
        )
    ]


def engine_name(settings: Settings) -> str:
    """Backend name without credentials."""
    return "SQLite" if settings.is_sqlite else "PostgreSQL"


def checks(settings: Settings) -> list[tuple[str, str, str]]:
    """(status, subject, explanation) for every check."""
    results = [
        (OK if sys.version_info >= (3, 11) else FAIL, "python", sys.version.split()[0]),
    ]
    for name in _PACKAGES:
        try:
            results.append((OK, name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            results.append((FAIL, name, "not installed"))
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    writable = os.access(data_dir, os.W_OK)
    results.append(
        (
            OK if writable else FAIL,
            "data dir",
            f"{data_dir} {'writable' if writable else 'not writable'}",
        )
    )
    db_status, db_text = _database(settings)
    results.append((db_status, "database", db_text))
    results.append(
        (OK if (web_dir() / "templates").is_dir() else FAIL, "web assets", str(web_dir()))
    )
    results.append((OK if migrations_dir().is_dir() else FAIL, "migrations", str(migrations_dir())))
    results.append(_secret_key(settings, data_dir))
    if settings.tls_enabled:
        readable = all(p is not None and p.is_file() for p in (settings.tls_cert, settings.tls_key))
        results.append(
            (
                OK if readable else FAIL,
                "tls",
                "certificate and key readable" if readable else "missing files",
            )
        )
    else:
        results.append((WARN, "tls", "off: browsers allow cameras only on localhost without HTTPS"))
    results.extend(_dicom(settings))
    if not settings.turn_urls:
        results.append((WARN, "turn", "no TURN server: consults across strict NATs will fail"))
    for tool, purpose in _TOOLS.items():
        found = shutil.which(tool)
        results.append((OK if found else WARN, tool, found or f"not found ({purpose})"))
    return results


def run(settings: Settings) -> int:
    """Print every check; exit 1 when any failed."""
    results = checks(settings)
    for status, subject, explanation in results:
        print(f"[{status:>4}] {subject:<12} {explanation}")
    return 1 if any(status == FAIL for status, _, _ in results) else 0
