"""The end of a visit: the specialist's advice on the kiosk, and the take-home summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import update

from server import keys
from server.kiosk.models import KioskVisit
from tests.server.consults.helpers import act, on_duty
from tests.server.kiosk.visits import check_in, queue, vitals
from tests.support import Client, World, audit_actions

ADVICE = "Take your amlodipine every morning & measure again <in> a week."


async def _advised_visit(client: Client, world: World, language: str = "en") -> int:
    await on_duty(client, world, "cardio")
    visit = (await check_in(client, world, language=language))["id"]
    await vitals(client, world, visit, systolic=184, diastolic=99, heart_rate=77)
    _, place = await queue(client, world, visit)
    status, _ = await act(client, world, place["consult_id"], "accept", "cardio")
    assert status == 200
    note = await client.post(
        f"/api/v1/consults/{place['consult_id']}/note",
        json={"kind": "advice", "text": ADVICE},
        headers=world.auth("cardio"),
    )
    assert note.status == 201, await note.text()
    refused = await client.post(
        f"/api/v1/consults/{place['consult_id']}/note",
        json={"kind": "advice", "text": "written by the kiosk"},
        headers=world.auth("kiosk"),
    )
    assert refused.status == 403
    return int(visit)


async def test_the_summary_carries_the_advice_and_a_take_home_link_without_personal_data(
    client: Client, world: World
) -> None:
    visit = await _advised_visit(client, world)
    response = await client.get(
        f"/api/v1/kiosk/visits/{visit}/summary", headers=world.auth("kiosk")
    )
    assert response.status == 200
    summary = await response.json()
    assert [a["text"] for a in summary["advice"]] == [ADVICE]
    assert summary["advice"][0]["kind"] == "advice"
    assert summary["specialist"]
    assert summary["vitals"]["systolic"] == 184
    assert summary["flags"][0]["code"] == "hypertensive_crisis"
    link = summary["take_home"]
    path = urlsplit(link["url"]).path
    token = path.rsplit("/", 1)[1]
    assert path == f"/kiosk/take-home/{token}"
    assert len(token) == 64
    assert link["qr_svg"].startswith("<svg")
    again = await (
        await client.get(f"/api/v1/kiosk/visits/{visit}/summary", headers=world.auth("kiosk"))
    ).json()
    assert again["take_home"]["url"] == link["url"]  # the same link, however often asked
    finished = await client.post(
        f"/api/v1/kiosk/visits/{visit}/finish", headers=world.auth("kiosk")
    )
    assert finished.status == 204
    page = await client.get(path)  # no credential at all: the token is the key
    assert page.status == 200
    html = await page.text()
    assert "Take your amlodipine every morning &amp; measure again &lt;in&gt; a week." in html
    assert "184" in html
    assert "13800138000" not in html
    assert "138 0013 8000" not in html
    assert page.headers["Cache-Control"] == "no-store"
    reads = await audit_actions(client.app, "kiosk.take_home.read")
    assert [outcome for _, _, outcome in reads] == ["success"]


async def test_an_expired_or_unknown_take_home_link_opens_nothing(
    client: Client, world: World
) -> None:
    visit = await _advised_visit(client, world)
    summary = await (
        await client.get(f"/api/v1/kiosk/visits/{visit}/summary", headers=world.auth("kiosk"))
    ).json()
    path = urlsplit(summary["take_home"]["url"]).path
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(KioskVisit)
            .where(KioskVisit.id == visit)
            .values(take_home_until=datetime.now(UTC) - timedelta(minutes=1))
        )
    expired = await client.get(path)
    assert expired.status == 404
    assert ADVICE not in await expired.text()
    unknown = await client.get("/kiosk/take-home/" + "0" * 64)
    assert unknown.status == 404
    refusals = [a for a in await audit_actions(client.app, "kiosk.take_home") if a[2] == "denied"]
    assert len(refusals) == 2


async def test_a_chinese_visit_takes_home_a_chinese_page(client: Client, world: World) -> None:
    visit = await _advised_visit(client, world, language="zh")
    summary = await (
        await client.get(f"/api/v1/kiosk/visits/{visit}/summary", headers=world.auth("kiosk"))
    ).json()
    page = await client.get(urlsplit(summary["take_home"]["url"]).path)
    html = await page.text()
    assert '<html lang="zh-Hans"' in html
    assert "年" in html  # the date, in Chinese
    assert ADVICE.split("&")[0].strip() in html  # the doctor's own words are not translated
