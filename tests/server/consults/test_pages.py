"""Consult pages as a browser posts them: the GP's form and status page, answers, duty."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

from server import keys
from server.consults.models import Consult
from tests.dicom_tools.part10 import STUDY_UID, dataset, part10
from tests.forms import post_form, sign_in
from tests.server.consults.helpers import (
    act,
    asked,
    consult,
    on_duty,
    run_out,
    two_cardiologists_on_duty,
)
from tests.support import Client, World, audit_actions, store


def _text(html: str) -> str:
    """The page's text, tags removed and whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def _alice_study(client: Client, world: World) -> str:
    """A CT study carrying Alice's identifier, name and birth date: linked to her on storing."""
    instance = dataset(
        replace={0x00100010: b"Able^Alice", 0x00100020: b"A-1 "},
        extra={0x00100030: ("DA", b"19700101"), 0x00100040: ("CS", b"F ")},
    )

    (result,) = await store(client.app, world.orgs["clinic-a"], [part10(instance)])
    assert result.study_uid == STUDY_UID, result
    return STUDY_UID


def _form(world: World, **fields: str | list[str]) -> dict[str, str | list[str]]:
    return {
        "patient_id": str(world.patients["alice"]),
        "ask": "specialty",
        "specialty": "cardiology",
        "specialist": "",
        "reason": "Chest pain since this morning",
        "timing": "now",
        **fields,
    }


async def _consults(client: Client, world: World, user: str = "gp-a") -> list[dict[str, Any]]:
    response = await client.get("/api/v1/consults", headers=world.auth(user))
    assert response.status == 200
    found: list[dict[str, Any]] = await response.json()
    return found


async def test_the_patient_page_leads_to_the_form_with_its_choices(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    study = await _alice_study(client, world)
    await sign_in(client, "gp-a")
    alice = world.patients["alice"]
    patient_page = await (await client.get(f"/patients/{alice}")).text()
    assert f'href="/consults/new?patient={alice}"' in patient_page
    response = await client.get(f"/consults/new?patient={alice}")
    assert response.status == 200
    html = await response.text()
    assert '<option value="general" selected>' in html  # the default specialty
    assert re.search(r'id="c-ask-specialty" name="ask" value="specialty" checked', html)
    assert re.search(r'id="c-timing-now" name="timing" value="now" checked', html)
    text = _text(html)
    assert "cardio (cardiology) — on duty now" in text
    assert "radio (radiology)" in text
    assert "radio (radiology) — on duty" not in text
    assert f'name="study" value="{study}"' in html
    assert "31 Jan 2024" in text
    for label in ("Who to ask", "Specialty", "Specialist", "Reason for the consult", "When"):
        assert f">{label}<" in html
    # Another clinic's patient, or no patient at all, is not found.
    bella = world.patients["bella"]
    assert (await client.get(f"/consults/new?patient={bella}")).status == 404
    assert (await client.get("/consults/new")).status == 404


async def test_asking_goes_to_the_status_page_which_says_who_has_it(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    study = await _alice_study(client, world)
    csrf = await sign_in(client, "gp-a")
    status, _, location = await post_form(client, "/consults", csrf, _form(world, study=[study]))
    assert status == 303
    (made,) = await _consults(client, world)
    assert location == f"/consults/{made['id']}/status"
    assert (made["specialty"], made["specialist"], made["study_uids"]) == (
        "cardiology",
        "cardio",
        [study],
    )
    assert made["reason"] == "Chest pain since this morning"
    html = await (await client.get(location)).text()
    text = _text(html)
    assert "Offered to cardio" in text
    assert "the request goes to the next specialist on duty" in text
    assert re.search(r'data-countdown data-until="[^"]+" data-suffix="left to answer"', html)
    assert f'data-module="consult-live" data-consult-id="{made["id"]}"' in html
    assert "Withdraw the request" in text
    assert 'href="/consults/' + str(made["id"]) + '"' not in html  # not accepted: no join link
    actions = [a for a in await audit_actions(client.app, "consult.") if a[1] == "gp-a"]
    assert ("consult.request", "gp-a", "success") in actions
    # The list shows it too.
    listed = _text(await (await client.get("/consults")).text())
    assert "ABLE, Alice" in listed
    assert "Offered to cardio" in listed


async def test_a_named_specialist_and_a_scheduled_time(client: Client, world: World) -> None:
    csrf = await sign_in(client, "gp-a")
    later = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    status, _, location = await post_form(
        client,
        "/consults",
        csrf,
        _form(
            world,
            ask="specialist",
            specialist="radio",
            timing="later",
            scheduled_at=later.strftime("%Y-%m-%dT%H:%M"),
        ),
    )
    assert status == 303, location
    (made,) = await _consults(client, world)
    assert (made["specialty"], made["specialist"]) == (None, "radio")
    assert datetime.fromisoformat(made["scheduled_at"].replace("Z", "+00:00")) == later
    text = _text(await (await client.get(location)).text())
    assert "Offered to radio" in text
    assert "the request ends and you can ask again" in text


async def test_a_bad_form_is_shown_again_with_the_error_summary(
    client: Client, world: World
) -> None:
    csrf = await sign_in(client, "gp-a")
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    status, html, _ = await post_form(
        client,
        "/consults",
        csrf,
        _form(world, specialty="astrology", reason="", timing="later", scheduled_at=past),
    )
    assert status == 422
    text = _text(html)
    assert "There is a problem" in text
    assert "Specialty: Choose the specialty to ask." in text
    assert "Reason for the consult: Say what you would like to discuss." in text
    assert "Date and time: Enter a date and time from now on" in text
    assert 'href="#c-specialty"' in html
    assert 'aria-invalid="true"' in html
    assert re.search(r'id="c-timing-later" name="timing" value="later" checked', html)
    status, html, _ = await post_form(
        client, "/consults", csrf, _form(world, ask="specialist", specialist="")
    )
    assert status == 422
    assert "Specialist: Choose the specialist to ask." in _text(html)
    status, html, _ = await post_form(
        client, "/consults", csrf, _form(world, study=["1.2.3.4"], reason="x" * 2001)
    )
    assert status == 422
    text = _text(html)
    assert "Studies to discuss: Choose studies of this patient only." in text
    assert "Reason for the consult: Write the reason in 2000 characters or fewer." in text
    # What the service refuses is shown too: a username that is no active specialist.
    status, html, _ = await post_form(
        client, "/consults", csrf, _form(world, ask="specialist", specialist="gp-b")
    )
    assert status == 422
    assert "'gp-b' is not an active specialist." in _text(html)
    assert 'value="Chest pain since this morning"' not in html  # a textarea keeps its text…
    assert ">Chest pain since this morning</textarea>" in html  # …as its content
    assert await _consults(client, world) == []


async def test_the_csrf_token_the_role_and_the_clinic_are_checked(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    csrf = await sign_in(client, "gp-a")
    status, _, _ = await post_form(client, "/consults", None, _form(world))
    assert status == 403
    bella = str(world.patients["bella"])
    status, _, _ = await post_form(client, "/consults", csrf, _form(world, patient_id=bella))
    assert status == 404
    assert await _consults(client, world) == []
    made = await asked(client, world)
    assert (await client.get(f"/consults/{made['id']}/status")).status == 200
    assert (await client.get("/consults/999999/status")).status == 404
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-b")
    assert (await client.get(f"/consults/{made['id']}/status")).status == 404
    assert made["id"] not in [c["id"] for c in await _consults(client, world, "gp-b")]
    assert "ABLE" not in _text(await (await client.get("/consults")).text())
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, "radio")  # a specialist it is not offered to
    assert (await client.get(f"/consults/{made['id']}/status")).status == 403
    status, _, _ = await post_form(client, f"/consults/{made['id']}/accept", csrf)
    assert status == 404
    status, _, _ = await post_form(client, "/consults", csrf, _form(world))
    assert status == 403
    assert (await consult(client, world, made["id"]))["status"] == "requested"


async def test_the_specialist_accepts_through_the_page(client: Client, world: World) -> None:
    await on_duty(client, world, "cardio")
    made = await asked(client, world)
    csrf = await sign_in(client, "cardio")
    html = await (await client.get("/consults")).text()
    text = _text(html)
    assert "1 request waiting for your answer" in text
    assert "ABLE, Alice" in text
    assert "Chest pain" in text
    assert f'action="/consults/{made["id"]}/accept"' in html
    assert f'action="/consults/{made["id"]}/decline"' in html
    status, _, _ = await post_form(client, f"/consults/{made['id']}/accept", None)
    assert status == 403
    status, _, location = await post_form(client, f"/consults/{made['id']}/accept", csrf)
    assert status == 303
    assert location == f"/consults?done=accepted&id={made['id']}"
    html = await (await client.get(location)).text()
    assert f"You accepted consult {made['id']}." in _text(html)
    assert f'href="/consults/{made["id"]}"' in html  # join the call
    assert "No requests waiting for you" in _text(html)
    assert (await consult(client, world, made["id"]))["status"] == "accepted"
    # A second answer is refused in words.
    status, html, _ = await post_form(client, f"/consults/{made['id']}/decline", csrf)
    assert status == 409
    assert "That was not possible" in _text(html)
    # The GP's status page says so, with the way into the call.
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-a")
    html = await (await client.get(f"/consults/{made['id']}/status")).text()
    assert "cardio accepted — join the call" in _text(html)
    assert f'href="/consults/{made["id"]}">Join the call' in html
    actions = [a for a in await audit_actions(client.app, "consult.") if a[1] == "cardio"]
    assert ("consult.accept", "cardio", "success") in actions


async def test_a_decline_moves_the_request_on(client: Client, world: World) -> None:
    await two_cardiologists_on_duty(client, world)
    made = await asked(client, world)
    first = made["specialist"]
    assert first in ("cardio", "cardio2")
    if first != "cardio":  # make cardio the one it is offered to, to sign in as them
        status, _ = await act(client, world, made["id"], "decline", first)
        assert status == 200
    csrf = await sign_in(client, "cardio")
    status, _, location = await post_form(client, f"/consults/{made['id']}/decline", csrf)
    assert status == 303
    assert location == f"/consults?done=declined&id={made['id']}"
    assert "You declined consult" in _text(await (await client.get(location)).text())
    after = await consult(client, world, made["id"])
    if first == "cardio":
        assert (after["status"], after["specialist"]) == ("requested", "cardio2")
    else:
        assert after["status"] == "expired"


async def test_an_expired_request_is_said_plainly_and_asked_again(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    study = await _alice_study(client, world)
    made = await asked(client, world, study_uids=[study], reason="Palpitations")
    await run_out(client, made["id"])  # cardio's offer lapses; nobody else is on duty
    csrf = await sign_in(client, "gp-a")
    html = await (await client.get(f"/consults/{made['id']}/status")).text()
    text = _text(html)
    assert "Nobody answered in time" in text
    assert "No answer came from a cardiology specialist." in text
    assert f'action="/consults/{made["id"]}/again"' in html
    assert (await consult(client, world, made["id"]))["status"] == "expired"
    status, _, _ = await post_form(client, f"/consults/{made['id']}/again", None)
    assert status == 403
    status, _, location = await post_form(client, f"/consults/{made['id']}/again", csrf)
    assert status == 303
    newest = (await _consults(client, world))[0]
    assert newest["id"] != made["id"]
    assert location == f"/consults/{newest['id']}/status?again={made['id']}"
    assert (newest["specialty"], newest["reason"], newest["study_uids"], newest["status"]) == (
        "cardiology",
        "Palpitations",
        [study],
        "requested",
    )
    text = _text(await (await client.get(location)).text())
    assert "You asked again" in text
    # Withdrawing it is one button.
    status, _, location = await post_form(client, f"/consults/{newest['id']}/withdraw", csrf)
    assert status == 303
    assert "Withdrawn" in _text(await (await client.get(location)).text())


async def test_the_duty_toggle_works_without_script(client: Client, world: World) -> None:
    csrf = await sign_in(client, "cardio")
    home = await (await client.get("/")).text()
    assert 'data-module="duty-toggle" data-on-duty="false"' in home
    assert 'aria-pressed="false"' in home
    assert 'data-module="consult-alerts"' in home
    assert 'href="/consults"' in home
    status, _, location = await post_form(client, "/duty", csrf, {"on_duty": "yes", "back": "/"})
    assert (status, location) == (303, "/")
    home = await (await client.get("/")).text()
    assert 'data-module="duty-toggle" data-on-duty="true"' in home
    assert "You are on duty" in _text(home)
    duty = await client.get("/api/v1/duty", headers=world.auth("cardio"))
    assert (await duty.json())["on_duty"] is True
    status, _, location = await post_form(
        client, "/duty", csrf, {"on_duty": "no", "back": "//evil.example/"}
    )
    assert (status, location) == (303, "/")
    status, _, _ = await post_form(client, "/duty", None, {"on_duty": "yes"})
    assert status == 403
    status, _, _ = await post_form(client, "/duty", csrf, {"on_duty": "maybe"})
    assert status == 422
    duty = await client.get("/api/v1/duty", headers=world.auth("cardio"))
    assert (await duty.json())["on_duty"] is False
    actions = [a for a, user, _ in await audit_actions(client.app, "duty.") if user == "cardio"]
    assert actions == ["duty.on", "duty.off"]
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, "gp-a")
    status, _, _ = await post_form(client, "/duty", csrf, {"on_duty": "yes"})
    assert status == 403
    assert 'data-module="duty-toggle"' not in await (await client.get("/")).text()


async def test_the_call_page_seats_each_doctor_and_refuses_everyone_else(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    made = await asked(client, world)
    status, body = await act(client, world, made["id"], "accept", "cardio")
    assert status == 200, body
    path = f"/consults/{made['id']}"
    seats = {}
    for user in ("gp-a", "cardio"):
        client.session.cookie_jar.clear()
        await sign_in(client, user)
        page = await client.get(path)
        assert page.status == 200, await page.text()
        html = await page.text()
        assert 'data-module="consult-call"' in html
        seats[user] = re.search(r'data-role="([a-z]+)"', html)[1]  # type: ignore[index]
        assert re.search(r"<button[^>]*data-call-join disabled", html), "inert until loaded"
        assert "Join</button>" in html
    assert seats == {"gp-a": "participant", "cardio": "host"}
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-b")
    assert (await client.get(path)).status == 404
    client.session.cookie_jar.clear()
    await sign_in(client, "kiosk")
    assert (await client.get(path)).status == 403
    client.session.cookie_jar.clear()
    anonymous = await client.get(path, allow_redirects=False)
    assert anonymous.status in (302, 303)
    assert "/login" in anonymous.headers["Location"]


async def test_a_call_page_before_acceptance_and_the_record_after_the_end(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    made = await asked(client, world)
    await sign_in(client, "gp-a")
    waiting = _text(await (await client.get(f"/consults/{made['id']}")).text())
    assert "The specialist has not accepted yet" in waiting
    assert "consult-call" not in waiting
    status, body = await act(client, world, made["id"], "accept", "cardio")
    assert status == 200, body
    noted = await client.post(
        f"/api/v1/consults/{made['id']}/note",
        json={"text": "Advice: start a beta blocker; referral down to the clinic."},
        headers=world.auth("cardio"),
    )
    assert noted.status == 201, await noted.text()
    ended = await client.post(f"/api/v1/consults/{made['id']}/end", headers=world.auth("gp-a"))
    assert ended.status == 200, await ended.text()
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        row = await session.get(Consult, made["id"])
        assert row is not None
        assert row.ended_at is not None
        row.live_at = row.ended_at - timedelta(minutes=4, seconds=5)
    record = await client.get(f"/consults/{made['id']}")
    assert record.status == 200
    text = _text(await record.text())
    assert "The consult record" in text
    assert "4 min 5 s" in text
    assert "Advice: start a beta blocker; referral down to the clinic." in text
    assert "consult-call" not in await (await client.get(f"/consults/{made['id']}")).text()
