"""The on-duty toggle: GET/PUT /api/v1/duty (the contract of the consults issue)."""

from __future__ import annotations

from tests.support import Client, World, audit_actions


async def test_a_specialist_goes_on_and_off_duty(client: Client, world: World) -> None:
    headers = world.auth("cardio")
    first = await client.get("/api/v1/duty", headers=headers)
    assert first.status == 200
    assert await first.json() == {"on_duty": False, "specialties": ["cardiology"]}
    for _ in range(2):
        put = await client.put("/api/v1/duty", json={"on_duty": True}, headers=headers)
        assert put.status == 200
        assert await put.json() == {"on_duty": True, "specialties": ["cardiology"]}
    assert (await (await client.get("/api/v1/duty", headers=headers)).json())["on_duty"] is True
    off = await client.put("/api/v1/duty", json={"on_duty": False}, headers=headers)
    assert (await off.json())["on_duty"] is False
    assert [a for a, _, _ in await audit_actions(client.app, "duty.")] == ["duty.on", "duty.off"]


async def test_only_specialists_have_duty_and_bad_bodies_are_refused(
    client: Client, world: World
) -> None:
    for user in ("gp-a", "admin", "kiosk"):
        response = await client.put(
            "/api/v1/duty", json={"on_duty": True}, headers=world.auth(user)
        )
        assert response.status == 403, user
        assert (await client.get("/api/v1/duty", headers=world.auth(user))).status == 403
    assert (await client.get("/api/v1/duty")).status == 401
    for body in ({"on_duty": "maybe"}, {}, {"on_duty": True, "extra": 1}):
        response = await client.put("/api/v1/duty", json=body, headers=world.auth("cardio"))
        assert response.status == 422, body
