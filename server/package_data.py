"""Locate the packaged web assets and migrations, from a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _locate(installed: str, checkout: str) -> Path:
    candidate = _PACKAGE / installed
    if candidate.is_dir():
        return candidate
    return _PACKAGE.parent / checkout


def web_dir() -> Path:
    """Directory holding `templates/` and `static/`."""
    return _locate("_web", "web")


def migrations_dir() -> Path:
    """Alembic script directory."""
    return _locate("_migrations", "migrations")
