"""Migrations 0014 to 0016 make the kiosk tables, and the consults' walk-in flag, as declared."""

from __future__ import annotations

from server.settings import Settings
from tests.support import World, schema_drift

TABLES = (
    "kiosk_enrolments",
    "kiosk_people",
    "kiosk_visits",
    "kiosk_readings",
    "kiosk_roster_shifts",
    "kiosk_follow_ups",
    "consults",
)


async def test_the_migrations_create_the_kiosk_tables_as_the_models_declare(
    settings: Settings, world: World
) -> None:
    assert await schema_drift(settings, *TABLES) == []
