"""The `doorstep` command, run as operators run it, against the test database."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from alembic.script import ScriptDirectory
from sqlalchemy import text

from server import db
from server.app import create_app
from server.archive import service as archive
from server.archive.lifetime import blob_root
from server.archive.storage import LocalBlobStorage
from server.package_data import migrations_dir
from server.settings import Settings
from tests.dicom_tools.part10 import dataset, part10
from tests.support import World, audit_events, store

COMMANDS = [
    [],
    ["serve"],
    ["demo"],
    ["db"],
    ["db", "upgrade"],
    ["org"],
    ["org", "add"],
    ["org", "update"],
    ["user"],
    ["user", "add"],
    ["token"],
    ["token", "create"],
    ["audit"],
    ["audit", "verify"],
    ["archive"],
    ["archive", "collect"],
    ["doctor"],
    ["verify"],
    ["signing"],
    ["signing", "export-ca"],
    ["signing", "import-ca"],
]


def doorstep(
    settings: Settings, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DOORSTEP_DATABASE_URL": settings.database_url,
        "DOORSTEP_DATA_DIR": str(settings.data_dir),
        "DOORSTEP_SECRET_KEY": settings.secret_key.get_secret_value(),
        "DOORSTEP_LOG_JSON": "false",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "doorstep")
def test_every_command_has_help(command: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: doorstep")


async def test_operator_creates_org_user_and_token_that_works(
    settings: Settings, world: World
) -> None:
    org = doorstep(
        settings, "org", "add", "Lakeside Clinic", "--kind", "clinic", "--ae-title", "LAKESIDE"
    )
    assert org.returncode == 0, org.stderr
    user = doorstep(
        settings,
        "user",
        "add",
        "gp.lake",
        "--org",
        "Lakeside Clinic",
        "--role",
        "gp",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert user.returncode == 0, user.stderr
    token = doorstep(settings, "token", "create", "gp.lake", "--expires-days", "1")
    assert token.returncode == 0, token.stderr
    lines = token.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("dst_")
    async with TestClient(TestServer(create_app(settings))) as client:
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {lines[0]}"})
        assert me.status == 200
        assert (await me.json())["organisation"]["name"] == "Lakeside Clinic"
    verify = doorstep(settings, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("audit log intact: 3 events")


def test_cli_refuses_bad_input_with_a_message(settings: Settings, world: World) -> None:
    cases = [
        (["org", "add", "clinic-a", "--kind", "clinic"], "exists"),
        (["org", "add", "X", "--kind", "clinic", "--ae-title", "lower case!"], "AE title"),
        (
            ["user", "add", "gp-x", "--org", "hospital", "--role", "gp", "--password-stdin"],
            "cannot belong",
        ),
        (
            ["user", "add", "Bad Name", "--org", "clinic-a", "--role", "gp", "--password-stdin"],
            "Username",
        ),
        (
            [
                "user",
                "add",
                "dr-x",
                "--org",
                "hospital",
                "--role",
                "specialist",
                "--specialty",
                "astrology",
                "--password-stdin",
            ],
            "Unknown specialty",
        ),
        (
            ["user", "add", "gp-y", "--org", "nowhere", "--role", "gp", "--password-stdin"],
            "No organisation",
        ),
        (["org", "add", "X", "--kind", "clinic", "--dicom-peer", "10.0.0.300"], "not an IP"),
        (["org", "add", "X", "--kind", "clinic", "--dicom-peer", "ct.lan"], "host names"),
        (["org", "update", "clinic-a", "--dicom-peer", "10.0.0.0/33"], "not an IP address"),
        (["org", "update", "clinic-a", "--dicom-peer", "fe80::1%eth0"], "zone"),
        (["org", "update", "clinic-a"], "Nothing to change"),
        (["org", "update", "nowhere", "--dicom-peer", "10.0.0.1"], "No organisation"),
        (["org", "update", "clinic-a", "--ae-title", "a*"], "AE title"),
        (["org", "update", "clinic-a", "--dicom-cert-sha256", "abc"], "64 hex digits"),
        (["token", "create", "ghost"], "No user"),
        (["token", "create", "gp-a", "--expires-days", "0"], "lifetime"),
    ]
    for args, message in cases:
        result = doorstep(settings, *args, stdin="long enough password\n")
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


async def test_operator_lists_and_changes_an_organisations_dicom_peers(
    settings: Settings, world: World
) -> None:
    added = doorstep(
        settings,
        *("org", "add", "Lakeside Clinic", "--kind", "clinic", "--ae-title", "LAKESIDE"),
        *("--dicom-peer", "192.168.1.5/24", "--dicom-peer", "::ffff:10.1.2.3"),
        *("--dicom-peer", "2001:DB8::1", "--dicom-peer", "192.168.1.0/24"),
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[-1] == (
        "DICOM peers of LAKESIDE: 10.1.2.3/32, 192.168.1.0/24, 2001:db8::1/128"
    )

    def update(*args: str) -> list[str]:
        result = doorstep(settings, "org", "update", "Lakeside Clinic", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    assert update("--dicom-peer", "10.9.9.9")[2] == (
        "DICOM peers: 10.1.2.3/32, 10.9.9.9/32, 192.168.1.0/24, 2001:db8::1/128"
    )
    assert update("--dicom-peer", "10.9.9.9")[0] == "organisation 'Lakeside Clinic' unchanged"
    assert update("--clear-dicom-peers", "--dicom-peer", "172.16.0.0/12")[2] == (
        "DICOM peers: 172.16.0.0/12"
    )
    assert update("--clear-dicom-peers")[2] == "DICOM peers: none (loopback peers only)"
    fingerprint = ":".join(["AB"] * 32)
    assert update(
        "--ae-title", "LAKE2", "--dicom-cert-sha256", f"SHA256 Fingerprint={fingerprint}"
    )[1:] == [
        "AE title: LAKE2",
        "DICOM peers: none (loopback peers only)",
        f"DICOM client certificate: SHA-256 {'ab' * 32}",
    ]
    taken = doorstep(settings, "org", "update", "clinic-a", "--dicom-cert-sha256", "ab" * 32)
    assert (taken.returncode, "pinned to 'Lakeside Clinic'" in taken.stderr) == (2, True)
    assert update("--clear-dicom-cert")[3] == "DICOM client certificate: none pinned"

    async with TestClient(TestServer(create_app(settings))) as client:
        created = await audit_events(client.app, "org.create")
        updates = await audit_events(client.app, "org.update")
    assert json.loads(created[-1].details)["dicom_peers"] == [
        "10.1.2.3/32",
        "192.168.1.0/24",
        "2001:db8::1/128",
    ]
    lake = "Lakeside Clinic"
    first = ["10.1.2.3/32", "192.168.1.0/24", "2001:db8::1/128"]
    second = ["10.1.2.3/32", "10.9.9.9/32", "192.168.1.0/24", "2001:db8::1/128"]
    assert [json.loads(e.details) for e in updates] == [
        {"name": lake, "before": {"dicom_peers": first}, "after": {"dicom_peers": second}},
        {
            "name": lake,
            "before": {"dicom_peers": second},
            "after": {"dicom_peers": ["172.16.0.0/12"]},
        },
        {"name": lake, "before": {"dicom_peers": ["172.16.0.0/12"]}, "after": {"dicom_peers": []}},
        {
            "name": lake,
            "before": {"ae_title": "LAKESIDE", "dicom_cert_sha256": None},
            "after": {"ae_title": "LAKE2", "dicom_cert_sha256": "ab" * 32},
        },
        {
            "name": lake,
            "before": {"dicom_cert_sha256": "ab" * 32},
            "after": {"dicom_cert_sha256": None},
        },
    ]
    assert {e.actor.split(":")[0] for e in updates} == {"cli"}
    assert doorstep(settings, "audit", "verify").returncode == 0


async def test_audit_verify_fails_on_a_tampered_log(settings: Settings, world: World) -> None:
    assert doorstep(settings, "token", "create", "gp-a").returncode == 0
    assert doorstep(settings, "token", "create", "gp-b").returncode == 0
    engine = db.create_engine(settings)
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            await connection.execute(text("DROP TRIGGER audit_events_append_only_update"))
        await connection.execute(text("UPDATE audit_events SET actor = 'nobody' WHERE id = 1"))
    await engine.dispose()
    result = doorstep(settings, "audit", "verify")
    assert result.returncode == 1
    assert "event 1: content does not match its hash" in result.stderr


async def test_audit_checkpoint_then_verify_detects_a_cut_behind_it(
    settings: Settings, world: World, tmp_path: Path
) -> None:
    for username in ("gp-a", "gp-b", "cardio"):
        assert doorstep(settings, "token", "create", username).returncode == 0
    printed = doorstep(settings, "audit", "checkpoint")
    assert printed.returncode == 0, printed.stderr
    anchor = json.loads(printed.stdout)
    assert (anchor["count"], anchor["head_id"]) == (3, 3)
    # Checkpoints are read from a log file, among other lines, as the server logs them.
    saved = tmp_path / "server.log"
    saved.write_text(f"starting\n2026-12-01 INFO audit checkpoint {printed.stdout}\n")
    intact = doorstep(settings, "audit", "verify", "--checkpoint", str(saved))
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.strip() == "audit log intact: 3 events, consistent with 1 checkpoint(s)"

    engine = db.create_engine(settings)
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            await connection.execute(text("DROP TRIGGER audit_events_append_only_delete"))
        kept = (await connection.execute(text("SELECT * FROM audit_chain_head"))).one()
        await connection.execute(text("DELETE FROM audit_events WHERE id > 1"))
        rows = await connection.execute(text("SELECT id, hash FROM audit_events WHERE id = 1"))
        first = rows.one()
        await connection.execute(
            text("UPDATE audit_chain_head SET last_id = :id, last_hash = :hash"),
            {"id": first.id, "hash": first.hash},
        )
    await engine.dispose()
    assert kept.last_id == 3
    cut = doorstep(settings, "audit", "verify", "--checkpoint", str(saved))
    assert cut.returncode == 1
    assert "names event 3: events were cut off" in cut.stderr
    assert "chain head does not match its MAC" in cut.stderr

    saved.write_text(printed.stdout.replace('"count":3', '"count":30'))
    forged = doorstep(settings, "audit", "verify", "--checkpoint", str(saved))
    assert forged.returncode == 2
    assert "MAC does not match" in forged.stderr


def head_revision() -> str:
    head = ScriptDirectory(str(migrations_dir())).get_current_head()
    assert head is not None
    return head


def test_doctor_reports_the_database(settings: Settings, world: World) -> None:
    result = doorstep(settings, "doctor")
    assert f"reachable, schema {head_revision()}" in result.stdout
    assert result.returncode == 0, result.stdout


def test_db_upgrade_is_idempotent(settings: Settings, world: World) -> None:
    result = doorstep(settings, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"database at revision {head_revision()}"


async def test_archive_collect_removes_old_orphans_and_prints_a_summary(
    settings: Settings, world: World
) -> None:
    original = part10(dataset())
    changed = part10(dataset(replace={0x00100010: b"Changed^Name"}))
    clinic = world.orgs["clinic-a"]
    steps: list[tuple[bytes, archive.ConflictPolicy]] = [(original, "reject"), (changed, "replace")]
    async with TestClient(TestServer(create_app(settings))) as client:
        for data, conflict in steps:
            (result,) = await store(client.app, clinic, [data], conflict=conflict)
            assert result.ok
    storage = LocalBlobStorage(blob_root(settings.data_dir))
    blobs = [storage.path(hashlib.sha256(data).hexdigest()) for data in (original, changed)]
    for blob in blobs:
        two_hours_ago = blob.stat().st_mtime - 7200
        os.utime(blob, (two_hours_ago, two_hours_ago))

    kept = doorstep(settings, "archive", "collect", "--grace-minutes", "180")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.splitlines() == [
        "orphan blobs: examined 2, removed 0 (0 bytes freed), kept 1 younger than the grace"
    ]
    collected = doorstep(settings, "archive", "collect")
    assert collected.returncode == 0, collected.stderr
    assert collected.stdout.splitlines() == [
        f"orphan blobs: examined 2, removed 1 ({len(original)} bytes freed), "
        "kept 0 younger than the grace"
    ]
    assert [blob.exists() for blob in blobs] == [False, True]
    refused = doorstep(settings, "archive", "collect", "--grace-minutes", "0")
    assert refused.returncode == 2
    assert "at least 1" in refused.stderr


async def test_a_token_issued_from_the_cli_is_audited_as_from_the_admin_page(
    settings: Settings, world: World
) -> None:
    """One action writes token.create, whoever calls it: the same object and details."""
    from tests.forms import post_form, sign_in
    from tests.support import audit_events

    assert doorstep(settings, "token", "create", "kiosk", "--label", "cli").returncode == 0
    async with TestClient(TestServer(create_app(settings))) as client:
        csrf = await sign_in(client, "admin")
        status, _, _ = await post_form(client, "/admin/devices/kiosk/tokens", csrf)
        assert status == 201
        events = await audit_events(client.app, "token.create")
    assert [e.actor.split(":")[0] for e in events] == ["cli", "admin"]
    assert {e.object_type for e in events} == {"token"}
    assert all(e.object_id.isdigit() and e.org_id == world.orgs["corner"] for e in events)
    assert [json.loads(e.details) for e in events] == [
        {"username": "kiosk", "label": "cli"},
        {"username": "kiosk", "label": "reissued"},
    ]


@pytest.fixture
def offline(tmp_path: Path) -> Settings:
    """Settings of a process on its own embedded database (no seeded world needed)."""
    return Settings(data_dir=tmp_path / "data", secret_key="s" * 32)


def test_list_settings_take_the_readme_s_comma_separated_form(offline: Settings) -> None:
    settings = offline
    readme = doorstep(settings, "doctor", env={"DOORSTEP_TURN_URLS": "turn:turn.example.org:3478"})
    assert "Traceback" not in readme.stderr
    assert "no TURN server" not in readme.stdout, readme.stdout + readme.stderr
    several = doorstep(
        settings,
        "doctor",
        env={
            "DOORSTEP_TURN_URLS": "turn:a.example.org:3478?transport=udp, turns:b.example.org:5349",
            "DOORSTEP_TRUSTED_PROXIES": "10.0.0.1,192.168.0.0/16",
        },
    )
    assert "Traceback" not in several.stderr
    assert "no TURN server" not in several.stdout


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DOORSTEP_PORT", "eighty", "valid integer"),
        ("DOORSTEP_TRUSTED_PROXIES", "10.0.0.1,not-an-address", "not-an-address"),
        ("DOORSTEP_TURN_URLS", '["unclosed', "JSON"),
        ("DOORSTEP_ARCHIVE_CONFLICT", "overwrite", "reject"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    offline: Settings, variable: str, value: str, says: str
) -> None:
    result = doorstep(offline, "doctor", env={variable: value})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"doorstep: invalid setting {variable}: "), line
    assert says in line


def test_an_unreadable_secret_key_file_is_one_line(offline: Settings, tmp_path: Path) -> None:
    absent = tmp_path / "no-such-key"
    empty = tmp_path / "empty-key"
    empty.write_text("\n")
    for path, says in ((absent, "cannot read"), (empty, "is empty")):
        result = doorstep(
            offline,
            "audit",
            "verify",
            env={"DOORSTEP_SECRET_KEY": "", "DOORSTEP_SECRET_KEY_FILE": str(path)},
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"doorstep: invalid setting DOORSTEP_SECRET_KEY_FILE: {path}"), line
        assert says in line


def test_user_add_without_a_password_refuses_unless_told_no_password(
    settings: Settings, world: World
) -> None:
    add = ["user", "add", "gp-z", "--org", "clinic-a", "--role", "gp"]
    for extra, stdin in (([], ""), ([], "piped but not asked for\n"), (["--password-stdin"], "\n")):
        refused = doorstep(settings, *add, *extra, stdin=stdin)
        assert refused.returncode == 2, refused.stdout
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith("doorstep: "), line
        assert "--password-stdin" in line, line
        assert "--no-password" in line, line
    assert "No user" in doorstep(settings, "token", "create", "gp-z").stderr  # none created
    both = doorstep(settings, *add, "--password-stdin", "--no-password", stdin="x" * 20)
    assert both.returncode == 2
    assert "not allowed with" in both.stderr
    token_only = doorstep(settings, *add, "--no-password")
    assert token_only.returncode == 0, token_only.stderr
    assert "without a password (sign in with a token)" in token_only.stdout
