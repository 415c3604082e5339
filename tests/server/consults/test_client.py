"""The Python consult client (`server.consults.client`): real aiortc peers through a real server.

The tests with a server run on SQLite and on PostgreSQL against one application; the
command line test runs a real `doorstep serve` process and `doorstep consult join`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from server import keys
from server.consults.client import ConsultClient, ConsultClientError
from server.consults.media import Source, ice_candidate, is_loopback, rtc_configuration
from tests.server.consults.calls import WAIT, Signal, VideoPeer, accepted_consult
from tests.server.consults.helpers import consult
from tests.server.reading.test_concurrency import _serving, _wait_ready
from tests.support import Client, World, audit_trail

REPO = Path(__file__).resolve().parents[3]


def _peer(
    client: Client,
    world: World,
    user: str,
    consult_id: int,
    *,
    source: Source | None = None,
    auto_admit: bool = False,
) -> ConsultClient:
    """A consult client of a seeded user against the test's server."""
    return ConsultClient(
        str(client.make_url("")),
        world.tokens[user],
        consult_id,
        source=source,
        auto_admit=auto_admit,
        timeout=WAIT,
    )


async def test_a_gp_and_the_host_see_each_other_and_chat(client: Client, world: World) -> None:
    consult_id = await accepted_consult(client, world)
    said: list[str] = []
    async with _peer(client, world, "cardio", consult_id) as host:
        assert host.role == "host"
        assert host.in_room
        async with ConsultClient(
            str(client.make_url("")),
            world.tokens["gp-a"],
            consult_id,
            timeout=WAIT,
            say=said.append,
        ) as gp:
            assert gp.role == "participant"
            assert gp.in_lobby, "the GP waits in the lobby"
            assert not gp.in_room
            await host.wait_for(lambda: gp.peer in host.knocks, what="the knock")
            await host.admit(str(gp.peer))
            await gp.wait_admitted()
            await asyncio.gather(gp.wait_frames(5), host.wait_frames(5))
            assert host.received[str(gp.peer)].size == (320, 240)
            assert gp.received[str(host.peer)].first_frame_at is not None
            assert [t.kind for t in gp.remote_tracks] == ["video"]
            await gp.send_chat("Her troponin is up.")
            chat = await host.wait_chat()
            assert (chat.sender, chat.text) == (gp.peer, "Her troponin is up.")
            await host.send_view({"series": "1.2.3", "frame": 7})
            await gp.wait_for(lambda: bool(gp.views), what="the view")
            assert gp.views[0]["state"] == {"series": "1.2.3", "frame": 7}
            before = host.received[str(gp.peer)].frames
            await host.wait_frames(before + 3)
        await host.wait_for(lambda: set(host.peers) == {host.peer}, what="the GP leaving")
        assert host.links == {}, "the GP's peer connection is closed when they leave"
    assert gp.closed
    assert host.closed
    assert "Waiting in the lobby until the host admits you." in said
    assert "Admitted into the call." in said
    assert any(s.startswith("Receiving video from") for s in said)
    record = await consult(client, world, consult_id)
    assert [n["text"] for n in record["notes"]] == ["Her troponin is up."]
    assert record["status"] == "live"
    assert [a for a, _, _ in await audit_trail(client.app, "consult.admit")] == ["gp-a"]


async def test_a_host_auto_admits_and_a_later_comer_offers(client: Client, world: World) -> None:
    consult_id = await accepted_consult(client, world)
    async with _peer(client, world, "cardio", consult_id, auto_admit=True) as host:
        async with _peer(client, world, "gp-a", consult_id) as gp:
            await gp.wait_admitted()
            assert gp.waited_in_lobby
            await asyncio.gather(gp.wait_frames(3), host.wait_frames(3))
        # The GP comes back (a reload): no new admission, and media flows again.
        async with _peer(client, world, "gp-a", consult_id) as back:
            assert back.role == "participant"
            assert back.in_room
            assert not back.waited_in_lobby, "admitted once: straight back into the room"
            await asyncio.gather(back.wait_frames(3), host.wait_frames(3))


def _trickled(sdp: str) -> tuple[str, list[str]]:
    """An SDP without its candidates (as a browser sends it), and the candidates apart."""
    lines = sdp.splitlines()
    candidates = [line[2:] for line in lines if line.startswith("a=candidate:")]
    kept = [line for line in lines if not line.startswith(("a=candidate:", "a=end-of-cand"))]
    return "\r\n".join(kept) + "\r\n", candidates


async def test_trickled_candidates_and_an_ice_restart_are_answered(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    async with _peer(client, world, "cardio", consult_id, auto_admit=True) as host:
        gp = await Signal.open(client, consult_id, world.auth("gp-a"))
        await gp.join("participant")
        await gp.peers_become(gp.peer, str(host.peer))
        browsers: list[VideoPeer] = []
        try:
            for _ in range(2):  # the second, from a fresh connection, restarts ICE and DTLS
                browser = VideoPeer(shade=60)
                browsers.append(browser)
                offer, candidates = _trickled(await browser.offer())
                assert candidates
                await gp.send("offer", to=host.peer, sdp=offer)
                answer = await gp.next("answer", **{"from": host.peer})
                assert (await gp.next("candidate"))["candidate"] is None
                await browser.accept(answer["sdp"])
                for candidate in candidates:
                    await gp.send(
                        "candidate",
                        to=host.peer,
                        candidate={"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0},
                    )
                await gp.send("candidate", to=host.peer, candidate=None)
                before = host.received[gp.peer].frames if gp.peer in host.received else 0
                await host.wait_frames(before + 5)
                assert len(await browser.frames(3)) == 3
        finally:
            for browser in browsers:
                await browser.close()
        await gp.close()


def _tiny_video(path: Path, frames: int = 30) -> None:
    """A one-second 160x120 VP8 WebM whose frames all differ."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for n in range(frames):
            pixels = np.full((120, 160, 3), (n * 8) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


async def test_a_media_file_is_streamed(client: Client, world: World, tmp_path: Path) -> None:
    video = tmp_path / "clip.webm"
    _tiny_video(video)
    consult_id = await accepted_consult(client, world)
    source = Source.parse(f"file:{video}")
    async with (
        _peer(client, world, "cardio", consult_id, auto_admit=True) as host,
        _peer(client, world, "gp-a", consult_id, source=source) as gp,
    ):
        await gp.wait_admitted()
        await host.wait_frames(40)  # more than the file holds: it loops
        assert host.received[str(gp.peer)].size == (160, 120)


async def test_a_stranger_is_told_clearly_and_holds_nothing_open(
    client: Client, world: World
) -> None:
    consult_id = await accepted_consult(client, world)
    stranger = _peer(client, world, "gp-b", consult_id)
    with pytest.raises(ConsultClientError) as refused:
        await stranger.join()
    assert refused.value.status == 404
    assert "not one of its doctors" in refused.value.message
    assert stranger.closed
    nobody = ConsultClient(str(client.make_url("")), "not-a-token", consult_id, timeout=WAIT)
    with pytest.raises(ConsultClientError) as unknown:
        await nobody.join()
    assert unknown.value.status == 401
    assert "doorstep token create" in unknown.value.message


def test_sources_and_ice_configuration() -> None:
    assert Source.parse("pattern") == Source()
    assert Source.parse("file:/tmp/a.mp4") == Source("file", "/tmp/a.mp4")
    assert Source.parse("camera:/dev/video0") == Source("camera", "/dev/video0")
    for bad in ("", "file:", "screen:1", "camera"):
        with pytest.raises(ValueError, match="a source is"):
            Source.parse(bad)
    assert is_loopback("http://127.0.0.1:8080")
    assert is_loopback("http://localhost")
    assert not is_loopback("https://doorstep.example.org")
    servers = [
        {"urls": ["stun:a.example:3478", "stun:b.example:3478"]},
        {
            "urls": ["turn:t.example:3478?transport=udp", "turns:t.example:5349?transport=tcp"],
            "username": "1:2",
            "credential": "c",
        },
    ]
    found = rtc_configuration(servers)
    assert [s.urls for s in found.iceServers or []] == [
        "stun:a.example:3478",
        "turn:t.example:3478?transport=udp",
    ]
    assert (found.iceServers or [])[1].username == "1:2"
    no_stun = rtc_configuration(servers, stun=False, relay_only=True)
    assert [s.urls for s in no_stun.iceServers or []] == ["turn:t.example:3478?transport=udp"]
    assert no_stun.iceTransportPolicy.value == "relay"
    assert rtc_configuration([], stun=True).iceServers == [], "never aiortc's default STUN"
    candidate = ice_candidate(
        {
            "candidate": "candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
    )
    assert candidate is not None
    assert (candidate.ip, candidate.port, candidate.sdpMid) == ("192.0.2.1", 50000, "0")
    assert ice_candidate({"candidate": ""}) is None
    assert ice_candidate({"candidate": "garbage"}) is None


# The command line against a real `doorstep serve` -----------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_command_line_joins_a_call(client: Client, world: World, tmp_path: Path) -> None:
    consult_id = await accepted_consult(client, world)
    config = client.app[keys.SETTINGS]
    log = tmp_path / "serve.log"
    with _serving(config, tmp_path / "data", log) as url:
        await asyncio.to_thread(_wait_ready, url, log)
        async with ConsultClient(
            url, world.tokens["cardio"], consult_id, auto_admit=True, timeout=WAIT
        ) as host:
            env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
            env["DOORSTEP_DATA_DIR"] = str(tmp_path / "cli-data")
            command = [sys.executable, "-m", "server.cli", "consult", "join", str(consult_id)]
            options = ["--server", url, "--token", world.tokens["gp-a"], "--duration", "3"]
            process = await asyncio.create_subprocess_exec(
                *command,
                *options,
                "--chat",
                "hello from the command line",
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(process.communicate(), WAIT * 2)
            text = output.decode()
            assert process.returncode == 0, text
            assert (await host.wait_chat()).text == "hello from the command line"
            assert max(r.frames for r in host.received.values()) > 0
        assert "Waiting in the lobby" in text
        assert "Admitted into the call." in text
        assert "Receiving video from" in text
        assert "Left the call" in text
        stranger = await asyncio.create_subprocess_exec(
            *command,
            "--server",
            url,
            "--token",
            "-",  # read from stdin, out of the process list
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        token = f"{world.tokens['gp-b']}\n".encode()
        _, refused = await asyncio.wait_for(stranger.communicate(token), WAIT)
        assert stranger.returncode == 2
        assert "not one of its doctors" in refused.decode()
