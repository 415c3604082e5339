"""Migration 0014 creates the kiosk's tables, and the consults' walk-in flag, as declared."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from server import db
from server.settings import Settings
from tests.support import World

TABLES = ("kiosk_people", "kiosk_visits", "kiosk_readings", "consults")


async def test_the_migration_creates_the_kiosk_tables_as_the_models_declare(
    settings: Settings, world: World
) -> None:
    engine = db.create_engine(settings)

    def differences(connection: Connection) -> tuple[list[object], list[str]]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found = compare_metadata(context, db.Base.metadata)
        tables = connection.dialect.get_table_names(connection)
        return [d for d in found if any(t in repr(d) for t in TABLES)], tables

    try:
        async with engine.connect() as connection:
            found, tables = await connection.run_sync(differences)
    finally:
        await engine.dispose()
    assert found == []
    assert set(TABLES) <= set(tables)
