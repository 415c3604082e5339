"""The call page's Studies panel for shared viewing, and the framed viewer it opens."""

from __future__ import annotations

import re

from tests.forms import sign_in
from tests.server.consults.helpers import act, asked, on_duty
from tests.server.consults.test_pages import _alice_study
from tests.support import Client, World


async def test_the_studies_panel_opens_the_attached_study_together(
    client: Client, world: World
) -> None:
    await on_duty(client, world, "cardio")
    study = await _alice_study(client, world)
    made = await asked(client, world, study_uids=[study])
    status, body = await act(client, world, made["id"], "accept", "cardio")
    assert status == 200, body
    for user in ("gp-a", "cardio"):
        client.session.cookie_jar.clear()
        await sign_in(client, user)
        page = await client.get(f"/consults/{made['id']}")
        assert page.status == 200
        assert page.headers["X-Frame-Options"] == "DENY"  # the call page itself is never framed
        html = await page.text()
        assert "data-shared-view" in html
        # Inert until the call module has started and the caller is in the call.
        assert re.search(rf'<button[^>]*data-shared-open="{study}" disabled>Open together<', html)
        assert f'href="/studies/{study}/view" target="_blank"' in html
        assert re.search(r'<iframe class="call-shared-frame" data-shared-frame title="[^"]+"', html)
        # Both doctors may open the framed viewer of the attached study (the archive's rule),
        # and only this origin may frame it.
        framed = await client.get(f"/studies/{study}/view?call={made['id']}")
        assert framed.status == 200, user
        assert framed.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in framed.headers["Content-Security-Policy"]
        assert f'data-call="{made["id"]}"' in await framed.text()


async def test_a_call_without_studies_has_no_studies_panel(client: Client, world: World) -> None:
    await on_duty(client, world, "cardio")
    made = await asked(client, world)
    status, body = await act(client, world, made["id"], "accept", "cardio")
    assert status == 200, body
    await sign_in(client, "cardio")
    html = await (await client.get(f"/consults/{made['id']}")).text()
    assert 'data-module="consult-call"' in html
    assert "data-shared-view" not in html
