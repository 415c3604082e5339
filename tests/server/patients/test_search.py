"""Patient search: names in any order and case (CJK names too), identifiers by prefix."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, select, text

from server import db, keys
from server.patients.models import Patient
from server.patients.search import fold, identifier_key, name_key, tokens
from server.settings import Settings
from tests.forms import sign_in
from tests.support import Client, World

PATIENTS = [
    ("Okafor^Grace", "RC-0001"),
    ("Okafor^Ben", "RC-0002"),
    ("王^小明", "RC-0010"),
    ("王^芳", "rc-0011"),
    ("李^小明", "HC-7"),
    ("Müller^Jürgen", "DE-1"),
    ("van der Berg^Anna^Maria", "NL-1"),
    ("O'Brien^Seán", "IE-1"),
    ("Straße^Zoë", "50%_OFF"),
    ("山田^太郎", "JP-1"),
    ("김^민준", "KR-1"),
]


def test_fold_and_tokens() -> None:
    assert fold("OKAFOR") == "okafor"
    assert fold("Müller") == "muller"
    assert fold("Straße") == "strasse"
    assert (
        fold("\uff32\uff23\uff0d\uff10\uff10\uff10\uff11") == "rc-0001"
    )  # full-width, as a CJK keyboard types it
    assert fold("がぎ") == "がぎ"  # kana voicing marks are part of the letter
    assert tokens("Okafor, Grace") == ["okafor", "grace"]
    assert tokens("  okafor^grace  ") == ["okafor", "grace"]
    assert tokens("grace GRACE Grace") == ["grace"]
    assert tokens(", ^ ;") == []


def test_keys() -> None:
    assert name_key("Okafor^Grace") == "okafor^grace"
    assert name_key("王^小明") == "王^小明^王小明^小明王"
    assert name_key("Wang^Xiaoming=王^小明") == "wang^xiaoming^王^小明^王小明^小明王"
    assert name_key("van der Berg^Anna^^Dr") == "van der berg^anna^dr"
    assert identifier_key(" RC-0001 ") == "rc-0001"


async def _register(client: Client, world: World) -> dict[str, int]:
    ids = {}
    for name, identifier in PATIENTS:
        body = {"name": name, "birth_date": "1970-01-01", "sex": "U", "identifier": identifier}
        response = await client.post("/api/v1/patients", json=body, headers=world.auth("gp-a"))
        assert response.status == 201, await response.text()
        ids[name] = (await response.json())["id"]
    return ids


async def _found(client: Client, world: World, q: str, username: str = "gp-a") -> set[str]:
    response = await client.get("/api/v1/patients", params={"q": q}, headers=world.auth(username))
    assert response.status == 200, await response.text()
    return {p["name"] for p in await response.json()}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("Okafor, Grace", {"Okafor^Grace"}),
        ("Grace Okafor", {"Okafor^Grace"}),
        ("okafor grace", {"Okafor^Grace"}),
        ("OKAFOR^GRACE", {"Okafor^Grace"}),
        ("okafor", {"Okafor^Grace", "Okafor^Ben"}),
        ("oka gra", {"Okafor^Grace"}),
        ("grace ben", set()),  # every word must match
        ("okaforgrace", set()),  # a word does not span two parts of the name
        # Chinese, Japanese and Korean names are typed without spaces.
        ("王小明", {"王^小明"}),
        ("王", {"王^小明", "王^芳"}),
        ("小明", {"王^小明", "李^小明"}),
        ("王 小明", {"王^小明"}),
        ("王芳", {"王^芳"}),
        ("山田太郎", {"山田^太郎"}),
        ("김민준", {"김^민준"}),
        ("李小", {"李^小明"}),
        # Accents and case folding.
        ("muller jurgen", {"Müller^Jürgen"}),
        ("MÜLLER", {"Müller^Jürgen"}),
        ("strasse zoe", {"Straße^Zoë"}),
        ("sean o'brien", {"O'Brien^Seán"}),
        ("berg anna", {"van der Berg^Anna^Maria"}),
        ("maria van", {"van der Berg^Anna^Maria"}),
        # Identifiers: prefix, any case.
        ("rc-00", {"Okafor^Grace", "Okafor^Ben", "王^小明", "王^芳"}),
        ("RC-0001", {"Okafor^Grace"}),
        ("rc-001", {"王^小明", "王^芳"}),
        ("\uff32\uff23\uff0d\uff10\uff10\uff10\uff12", {"Okafor^Ben"}),  # full-width
        ("C-00", set()),  # a prefix, not a substring
        # LIKE wildcards are literal, in names and in identifiers.
        ("%", set()),
        ("_", set()),
        ("50%", {"Straße^Zoë"}),
        ("50%_", {"Straße^Zoë"}),
        ("5_%", set()),
        ("nobody", set()),
    ],
)
async def test_search_names_in_any_order_and_identifiers_by_prefix(
    client: Client, world: World, q: str, expected: set[str]
) -> None:
    await _register(client, world)
    assert await _found(client, world, q) == expected


async def test_search_stays_in_the_clinic(client: Client, world: World) -> None:
    await _register(client, world)
    assert await _found(client, world, "okafor", "gp-b") == set()
    assert await _found(client, world, "rc-0", "gp-b") == set()
    assert await _found(client, world, "brown bella", "gp-b") == {"Brown^Bella"}
    assert await _found(client, world, "b-", "gp-b") == {"Brown^Bella"}


async def test_an_empty_search_lists_everyone_by_name(client: Client, world: World) -> None:
    await _register(client, world)
    for q in ("", "   "):
        assert len(await _found(client, world, q)) == len(PATIENTS) + 2
    # Only separators: nothing to look for in names, so the identifier prefix decides.
    assert await _found(client, world, ",") == set()


async def test_the_patients_page_searches_the_same_way(client: Client, world: World) -> None:
    ids = await _register(client, world)
    await sign_in(client, "gp-a")
    html = await (await client.get("/patients", params={"q": "Grace Okafor"})).text()
    assert "1 patient matching “Grace Okafor”" in html
    assert f'href="/patients/{ids["Okafor^Grace"]}"' in html
    html = await (await client.get("/patients", params={"q": "王小明"})).text()
    assert f'href="/patients/{ids["王^小明"]}"' in html
    assert f'href="/patients/{ids["李^小明"]}"' not in html
    html = await (await client.get("/patients", params={"q": "rc-00"})).text()
    assert "4 patients matching “rc-00”" in html


async def test_the_keys_follow_a_changed_name(client: Client, world: World) -> None:
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        patient = await session.get(Patient, world.patients["alice"])
        assert patient is not None
        assert (patient.name_key, patient.identifier_key) == ("able^alice", "a-1")
        patient.name = "Zhou^Li"
        patient.identifier = "ZZ-9"
        assert (patient.name_key, patient.identifier_key) == ("zhou^li", "zz-9")
    assert await _found(client, world, "li zhou") == {"Zhou^Li"}
    assert await _found(client, world, "zz") == {"Zhou^Li"}


async def test_the_migration_fills_the_keys_of_existing_patients(
    settings: Settings, world: World
) -> None:
    engine = db.create_engine(settings)

    def step_back_and_forth(connection: Connection) -> None:
        config = db._alembic_config(connection)
        command.downgrade(config, "0006")
        connection.execute(
            text(
                "INSERT INTO patients (org_id, name, birth_date, sex, identifier, created_at)"
                " VALUES (:org, :name, '1950-05-05', 'M', :identifier, CURRENT_TIMESTAMP)"
            ),
            {"org": world.orgs["clinic-a"], "name": "陳^大文", "identifier": "HK-0001"},
        )
        command.upgrade(config, "head")

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found = compare_metadata(context, db.Base.metadata)
        touched = ("patients", "audit_events", "users")
        return [d for d in found if any(table in repr(d) for table in touched)]

    try:
        async with engine.begin() as connection:
            await connection.run_sync(step_back_and_forth)
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            rows = await connection.execute(
                select(Patient.name, Patient.name_key, Patient.identifier_key).order_by(Patient.id)
            )
            keys = {name: (key, ident) for name, key, ident in rows}
    finally:
        await engine.dispose()
    assert keys["Able^Alice"] == ("able^alice", "a-1")
    assert keys["陳^大文"] == ("陳^大文^陳大文^大文陳", "hk-0001")
