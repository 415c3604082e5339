"""Migrations 0010, 0011 and 0012 create the consult tables exactly as the models declare them."""

from __future__ import annotations

from server.settings import Settings
from tests.support import World, schema_drift

TABLES = (
    "consults",
    "consult_studies",
    "consult_offers",
    "consult_notes",
    "consult_recordings",
)


async def test_the_migration_creates_the_consults_as_the_models_declare(
    settings: Settings, world: World
) -> None:
    assert await schema_drift(settings, *TABLES) == []
