"""`doorstep user password USERNAME [--password-stdin]`, run as operators run it."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.settings import Settings
from tests.forms import sign_in
from tests.server.test_cli import doorstep
from tests.support import PASSWORD, World, audit_events

NEW = "an operator's new password"


def test_the_command_has_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "user", "password", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: doorstep user password")
    assert "--password-stdin" in result.stdout


async def test_an_operator_sets_a_password_from_stdin(settings: Settings, world: World) -> None:
    async with TestClient(TestServer(create_app(settings))) as client:
        await sign_in(client, "gp-a")  # an open session, which the new password ends
        result = doorstep(
            settings, "user", "password", "gp-a", "--password-stdin", stdin=NEW + "\n"
        )
        assert result.returncode == 0, result.stderr
        assert "password of 'gp-a' changed" in result.stdout
        assert NEW not in result.stdout + result.stderr
        response = await client.get("/patients", allow_redirects=False)
        assert response.status in (302, 303)
        client.session.cookie_jar.clear()
        await sign_in(client, "gp-a", NEW)
        # Chosen by the operator, it is not temporary: the pages open at once.
        assert (await client.get("/patients")).status == 200
        events = await audit_events(client.app, "user.password_reset")
    assert [(e.actor.split(":")[0], e.object_id) for e in events] == [
        ("cli", str(world.users["gp-a"]))
    ]
    assert json.loads(events[0].details) == {"username": "gp-a", "temporary": False}


def test_the_command_refuses_without_a_terminal_or_a_good_password(
    settings: Settings, world: World
) -> None:
    cases = [
        (["user", "password", "gp-a"], NEW + "\n", "--password-stdin"),
        (["user", "password", "gp-a", "--password-stdin"], "short\n", "at least 10"),
        (["user", "password", "ghost", "--password-stdin"], NEW + "\n", "No user"),
        (["user", "password", "kiosk", "--password-stdin"], NEW + "\n", "Kiosk devices"),
    ]
    for args, stdin, message in cases:
        result = doorstep(settings, *args, stdin=stdin)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert doorstep(settings, "audit", "verify").stdout.startswith("audit log intact: 0 events")


def _on_a_terminal(settings: Settings, answers: list[str]) -> tuple[int, str]:
    """Run `doorstep user password gp-a` on a pseudo-terminal, answering each prompt."""
    env = {
        **os.environ,
        "DOORSTEP_DATABASE_URL": settings.database_url,
        "DOORSTEP_DATA_DIR": str(settings.data_dir),
        "DOORSTEP_SECRET_KEY": settings.secret_key.get_secret_value(),
        "DOORSTEP_LOG_JSON": "false",
    }
    pid, terminal = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pseudo-terminal
        os.execve(
            sys.executable, [sys.executable, "-m", "server.cli", "user", "password", "gp-a"], env
        )
    output = b""
    pending, answered = list(answers), 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([terminal], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(terminal, 1024)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            prompts = output.count(b"assword: ")
            if pending and prompts > answered:  # a new prompt, with the echo off
                os.write(terminal, pending.pop(0).encode() + b"\n")
                answered += 1
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


async def test_on_a_terminal_it_prompts_twice(settings: Settings, world: World) -> None:
    code, output = _on_a_terminal(settings, [NEW, NEW + " but different"])
    assert code == 2, output
    assert "Password:" in output
    assert "Repeat password:" in output
    assert "The passwords differ." in output
    code, output = _on_a_terminal(settings, [NEW, NEW])
    assert code == 0, output
    assert "password of 'gp-a' changed" in output
    assert NEW not in output  # not echoed
    async with TestClient(TestServer(create_app(settings))) as client:
        await sign_in(client, "gp-a", NEW)
        login = await client.post(
            "/api/v1/auth/login", json={"username": "gp-a", "password": PASSWORD}
        )
        assert login.status == 401
