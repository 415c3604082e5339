"""Fixtures: database tests run on SQLite and PostgreSQL, cloned from a seeded template."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server import db
from server.app import create_app
from server.settings import Settings
from tests.support import World, port_open, require, seed_world

SECRET = "test-secret-key-for-the-suite"
_PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _pg_admin_url() -> str | None:
    url = os.environ.get("DOORSTEP_TEST_POSTGRES_URL")
    if url:
        return url
    return _PG_DEFAULT if port_open("127.0.0.1", 5432) else None


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _build_template(url: str) -> World:
    async def build() -> World:
        settings = Settings(database_url=url, secret_key=SECRET, data_dir=Path("/nonexistent"))
        engine = db.create_engine(settings)
        try:
            await db.upgrade(engine)
            async with db.create_sessionmaker(engine)() as session, session.begin():
                return await seed_world(session)
        finally:
            await engine.dispose()

    return asyncio.run(build())


class Templates:
    """Migrated, seeded template databases, built once per run and cloned per test."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sqlite: tuple[Path, World] | None = None
        self.postgres: tuple[str, World] | None = None
        self.pg_admin = _pg_admin_url()
        self.run_id = secrets.token_hex(4)
        self.pg_databases: list[str] = []

    def sqlite_template(self) -> tuple[Path, World]:
        if self.sqlite is None:
            path = self.base / "template.db"
            world = _build_template(f"sqlite+aiosqlite:///{path}")
            self.sqlite = (path, world)
        return self.sqlite

    def postgres_template(self) -> tuple[str, World]:
        assert self.pg_admin is not None
        if self.postgres is None:
            name = f"doorstep_test_{self.run_id}_template"
            asyncio.run(_admin(self.pg_admin, f'CREATE DATABASE "{name}"'))
            self.pg_databases.append(name)
            world = _build_template(_with_database(self.pg_admin, name))
            self.postgres = (name, world)
        return self.postgres

    def clone_postgres(self) -> tuple[str, World]:
        template, world = self.postgres_template()
        assert self.pg_admin is not None
        name = f"doorstep_test_{self.run_id}_{len(self.pg_databases)}"
        asyncio.run(_admin(self.pg_admin, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        self.pg_databases.append(name)
        return _with_database(self.pg_admin, name), world

    def drop_all(self) -> None:
        if self.pg_admin and self.pg_databases:
            asyncio.run(
                _admin(
                    self.pg_admin,
                    *(
                        f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'
                        for n in reversed(self.pg_databases)
                    ),
                )
            )


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Template databases of this test run (PostgreSQL ones are dropped at the end)."""
    found = Templates(tmp_path_factory.mktemp("templates"))
    yield found
    found.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test."""
    return str(request.param)


@pytest.fixture
def database(backend: str, templates: Templates, tmp_path: Path) -> tuple[str, World]:
    """A fresh database URL seeded with the world, on the backend under test."""
    if backend == "sqlite":
        template, world = templates.sqlite_template()
        path = tmp_path / "doorstep.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}", world
    require(templates.pg_admin is not None, "PostgreSQL does not answer on 127.0.0.1:5432")
    return templates.clone_postgres()


@pytest.fixture
def world(database: tuple[str, World]) -> World:
    """The seeded network of the test's database."""
    return database[1]


@pytest.fixture
def settings(database: tuple[str, World], tmp_path: Path) -> Settings:
    """Settings for a server on the test's database and data directory."""
    return Settings(
        database_url=database[0],
        data_dir=tmp_path / "data",
        secret_key=SECRET,
        log_json=False,
        dicom_port=0,
    )


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    """The application (started by the client fixture)."""
    return create_app(settings)


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """An HTTP client talking to the application on a real socket."""
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
