"""Reading pages as a browser uses them: asking on the study page, the worklist, form claims."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

from sqlalchemy import update

from server import keys
from server.reading.models import ReadingRequest
from tests.dicom_tools.part10 import bundled
from tests.forms import post_form, sign_in
from tests.support import Client, World, audit_actions, store


async def _study(client: Client, world: World, name: str = "waveform_ecg.dcm") -> str:
    (result,) = await store(client.app, world.orgs["clinic-a"], [bundled(name).read_bytes()])
    assert result.study_uid is not None
    return result.study_uid


def _text(html: str) -> str:
    """The page's text, tags removed and whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def _ask(client: Client, csrf: str, study: str, **fields: str) -> tuple[int, str, str]:
    form = {"specialty": "cardiology", "priority": "stat", "question": "Chest pain", **fields}
    return await post_form(client, f"/studies/{study}/reading-requests", csrf, form)


async def _requests(client: Client, world: World, user: str) -> list[dict[str, object]]:
    response = await client.get("/api/v1/reading-requests?status=all", headers=world.auth(user))
    assert response.status == 200
    found: list[dict[str, object]] = await response.json()
    return found


async def test_the_study_page_offers_the_form_with_the_right_defaults(
    client: Client, world: World
) -> None:
    ecg = await _study(client, world)
    ct = await _study(client, world, "CT_small.dcm")
    await sign_in(client, "gp-a")
    html = await (await client.get(f"/studies/{ecg}")).text()
    assert f'action="/studies/{ecg}/reading-requests"' in html
    assert re.search(r'<option value="cardiology" selected>', html)
    assert re.search(r'value="routine" checked', html)
    text = _text(html)
    for words in ("STAT within 30 minutes", "Urgent within 4 hours", "Routine within 24 hours"):
        assert words in text
    assert "No reading has been asked for this study yet." in text
    assert '<option value="hospital">hospital</option>' in html  # the seeded hospital
    html = await (await client.get(f"/studies/{ct}")).text()
    assert re.search(r'<option value="radiology" selected>', html)


async def test_asking_redirects_to_the_study_with_a_confirmation(
    client: Client, world: World
) -> None:
    study = await _study(client, world)
    csrf = await sign_in(client, "gp-a")
    status, _, location = await _ask(client, csrf, study)
    assert status == 303
    (made,) = await _requests(client, world, "gp-a")
    assert location == f"/studies/{study}?asked={made['id']}#readings"
    assert (made["priority"], made["specialty"], made["question"]) == (
        "stat",
        "cardiology",
        "Chest pain",
    )
    due = datetime.fromisoformat(str(made["due_at"]).replace("Z", "+00:00"))
    text = _text(await (await client.get(location.split("#")[0])).text())
    assert f"Asked cardiology to read this study (STAT, due {due:%H:%M})." in text
    assert "Waiting for a reader" in text
    assert ("reading.request", "gp-a", "success") in await audit_actions(client.app, "reading.")


async def test_a_bad_form_is_shown_again_with_the_errors(client: Client, world: World) -> None:
    study = await _study(client, world)
    csrf = await sign_in(client, "gp-a")
    status, html, _ = await _ask(
        client, csrf, study, specialty="astrology", priority="asap", question="x" * 2001
    )
    assert status == 422
    text = _text(html)
    assert "There is a problem" in text
    assert "Specialty: Choose the specialty that should read this study." in text
    assert "Priority: Choose how soon the reading is needed." in text
    assert "Clinical question: Write the question in 2000 characters or fewer." in text
    assert await _requests(client, world, "gp-a") == []
    status, html, _ = await _ask(client, csrf, study, preferred_hospital="Nowhere General")
    assert status == 422
    assert "No hospital named" in _text(html)
    assert await _requests(client, world, "gp-a") == []


async def test_asking_needs_the_csrf_token_and_the_clinic_s_study(
    client: Client, world: World
) -> None:
    study = await _study(client, world)
    (other,) = await store(
        client.app, world.orgs["clinic-b"], [bundled("CT_small.dcm").read_bytes()]
    )
    csrf = await sign_in(client, "gp-a")
    status, _, _ = await _ask(client, None, study)  # type: ignore[arg-type]
    assert status == 403
    status, _, _ = await _ask(client, csrf, str(other.study_uid))
    assert status == 404
    assert await _requests(client, world, "gp-a") == []
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, "cardio")
    status, _, _ = await _ask(client, csrf, study)
    assert status == 403


async def _asked(client: Client, world: World, study: str, **fields: str) -> int:
    body = {"study_uid": study, "priority": "routine", "question": "Please read", **fields}
    response = await client.post("/api/v1/reading-requests", json=body, headers=world.auth("gp-a"))
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-request-id="([0-9]+)"', html)


async def test_the_worklist_sorts_counts_and_says_overdue_in_words(
    client: Client, world: World
) -> None:
    study = await _study(client, world)
    routine = await _asked(client, world, study, specialty="cardiology")
    stat = await _asked(client, world, study, specialty="cardiology", priority="stat")
    urgent = await _asked(client, world, study, specialty="cardiology", priority="urgent")
    await _asked(client, world, study, specialty="radiology")
    async with client.app[keys.SESSIONMAKER]() as session, session.begin():
        await session.execute(
            update(ReadingRequest)
            .where(ReadingRequest.id == urgent)
            .values(due_at=datetime.now(UTC) - timedelta(minutes=12, seconds=30))
        )
    await sign_in(client, "cardio")
    html = await (await client.get("/worklist")).text()
    assert _rows(html) == [str(stat), str(urgent), str(routine)]
    text = _text(html)
    assert "Overdue by 12 min" in text
    assert "1 overdue" in text
    assert "3 waiting" in text
    assert "0 claimed" in text
    row = re.search(rf'<tr data-request-id="{urgent}" class="([^"]*)"', html)
    assert row is not None
    assert "reading-overdue" in row.group(1)
    assert 'data-module="worklist"' in html
    home = await (await client.get("/")).text()
    assert 'href="/worklist"' in home
    # Filters work as a plain GET form.
    html = await (await client.get("/worklist?priority=stat")).text()
    assert _rows(html) == [str(stat)]
    assert "3 waiting" in _text(html)  # the counts stay those of the whole worklist
    html = await (await client.get("/worklist?status=overdue")).text()
    assert _rows(html) == [str(urgent)]


async def test_claim_and_release_work_as_plain_forms(client: Client, world: World) -> None:
    study = await _study(client, world)
    first = await _asked(client, world, study, specialty="cardiology")
    csrf = await sign_in(client, "cardio")
    status, _, location = await post_form(
        client, f"/worklist/{first}/claim", csrf, {"back": "priority=routine"}
    )
    assert status == 303
    assert location == f"/worklist?priority=routine&done=claimed&id={first}"
    html = await (await client.get(location)).text()
    text = _text(html)
    assert f"You claimed reading request {first}." in text
    assert "Claimed by you" in text
    assert f'href="/studies/{study}/view?request={first}"' in html
    assert f'action="/worklist/{first}/release"' in html
    assert "1 mine" in text
    status, _, location = await post_form(client, f"/worklist/{first}/release", csrf, {})
    assert status == 303
    assert location == f"/worklist?done=released&id={first}"
    html = await (await client.get("/worklist")).text()
    assert f'action="/worklist/{first}/claim"' in html
    actions = [a for a in await audit_actions(client.app, "reading.") if a[1] == "cardio"]
    assert ("reading.claim", "cardio", "success") in actions
    assert ("reading.release", "cardio", "success") in actions


async def test_someone_else_s_claim_is_shown_and_refused_plainly(
    client: Client, world: World
) -> None:
    study = await _study(client, world)
    first = await _asked(client, world, study, specialty="cardiology")
    from tests.server.reading.people import second_cardiologist

    token = await second_cardiologist(client, world)
    response = await client.post(
        f"/api/v1/reading-requests/{first}/claim", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200
    csrf = await sign_in(client, "cardio")
    html = await (await client.get("/worklist")).text()
    assert "Claimed by cardio2" in _text(html)
    assert f'action="/worklist/{first}/claim"' not in html
    status, html, _ = await post_form(client, f"/worklist/{first}/claim", csrf, {})
    assert status == 409
    assert f"Reading request {first} is claimed by cardio2" in _text(html)


async def test_next_case_opens_the_viewer_or_says_nothing_waits(
    client: Client, world: World
) -> None:
    study = await _study(client, world)
    csrf = await sign_in(client, "cardio")
    status, _, location = await post_form(client, "/worklist/next", csrf, {})
    assert (status, location) == (303, "/worklist?done=nothing")
    assert "Nothing is waiting for your specialties." in _text(
        await (await client.get(location)).text()
    )
    first = await _asked(client, world, study, specialty="cardiology", priority="urgent")
    status, _, location = await post_form(client, "/worklist/next", csrf, {})
    assert (status, location) == (303, f"/studies/{study}/view?request={first}")


async def test_the_worklist_is_for_specialists(client: Client, world: World) -> None:
    await sign_in(client, "gp-a")
    response = await client.get("/worklist", allow_redirects=False)
    assert response.status == 403
    nav = await (await client.get("/")).text()
    assert 'href="/worklist"' not in nav
    assert 'href="/reports"' in nav


async def test_the_study_page_shows_who_holds_a_claim(client: Client, world: World) -> None:
    study = await _study(client, world)
    first = await _asked(client, world, study, specialty="cardiology")
    response = await client.post(
        f"/api/v1/reading-requests/{first}/claim", headers=world.auth("cardio")
    )
    assert response.status == 200
    await sign_in(client, "gp-a")
    text = _text(await (await client.get(f"/studies/{study}")).text())
    assert "Claimed by cardio" in text


async def test_the_holder_gets_the_report_editor_beside_the_viewer(
    client: Client, world: World
) -> None:
    study = await _study(client, world)
    first = await _asked(
        client, world, study, specialty="cardiology", question="Rule out <b>MI</b>"
    )
    claimed = await client.post(
        f"/api/v1/reading-requests/{first}/claim", headers=world.auth("cardio")
    )
    assert claimed.status == 200
    saved = await client.put(
        f"/api/v1/reading-requests/{first}/report",
        json={
            "findings": "</textarea><script>alert(1)</script>",
            "impression": "Normal ECG",
            "measurements": {"heart_rate_bpm": 61.1, "qtc_ms": 402.5, "rhythm": "sinus rhythm"},
        },
        headers=world.auth("cardio"),
    )
    assert saved.status == 200, await saved.text()
    await sign_in(client, "cardio")
    html = await (await client.get(f"/studies/{study}/view?request={first}")).text()
    assert 'data-module="report-editor"' in html
    assert f'data-request-id="{first}"' in html
    assert 'data-kind="ecg"' in html
    # The ECG template's fields, filled from the draft, with the free text escaped.
    for key in ("rhythm", "heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "axis_deg"):
        assert f'data-measurement="{key}"' in html
    assert 'value="61"' in html
    assert 'value="402"' in html
    assert 'value="sinus rhythm"' in html
    assert "&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;</textarea>" in html
    assert "<script>alert" not in html
    assert "Rule out &lt;b&gt;MI&lt;/b&gt;" in html
    assert "Saved " in _text(html)
    assert f'href="/api/v1/reading-requests/{first}/report/preview"' in html
    assert "reading/reading.css" in html


async def test_an_imaging_request_gets_the_imaging_template(client: Client, world: World) -> None:
    study = await _study(client, world, "CT_small.dcm")
    first = await _asked(client, world, study, specialty="radiology")
    claimed = await client.post(
        f"/api/v1/reading-requests/{first}/claim", headers=world.auth("radio")
    )
    assert claimed.status == 200
    await sign_in(client, "radio")
    html = await (await client.get(f"/studies/{study}/view?request={first}")).text()
    assert 'data-kind="imaging"' in html
    assert 'data-measurement="technique"' in html
    assert 'data-measurement="comparison"' in html
    assert 'data-measurement="pr_ms"' not in html


async def test_no_editor_for_the_gp_or_a_reader_without_the_claim(
    client: Client, world: World
) -> None:
    study = await _study(client, world)
    first = await _asked(client, world, study, specialty="cardiology")
    await sign_in(client, "cardio")
    html = await (await client.get(f"/studies/{study}/view?request={first}")).text()
    assert 'data-module="report-editor"' not in html
    assert "This request is waiting for a reader." in _text(html)
    claimed = await client.post(
        f"/api/v1/reading-requests/{first}/claim", headers=world.auth("cardio")
    )
    assert claimed.status == 200
    client.session.cookie_jar.clear()
    await sign_in(client, "gp-a")
    html = await (await client.get(f"/studies/{study}/view?request={first}")).text()
    assert 'data-module="report-editor"' not in html
    assert "cardio is reading this study." in _text(html)
    # Another study's request, or an unknown one, is not shown on this study.
    other = await _study(client, world, "CT_small.dcm")
    assert (await client.get(f"/studies/{other}/view?request={first}")).status == 404
    assert (await client.get(f"/studies/{study}/view?request=999999")).status == 404


def test_report_templates_run_sandboxed_and_escaped() -> None:
    from jinja2.sandbox import SandboxedEnvironment

    from server.reading import templates

    assert isinstance(templates.environment(), SandboxedEnvironment)
    html = templates.render_fields(
        kind="imaging",
        findings="<img src=x onerror=alert(1)>",
        impression="a & b",
        measurements={"technique": '"><script>x</script>'},
    )
    assert "<img" not in html
    assert "<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "a &amp; b" in html
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in html
    assert templates.kind_of(modalities=("ECG",), specialty="radiology") == "ecg"
    assert templates.kind_of(modalities=("CT",), specialty="cardiology") == "imaging"
    sandbox = templates.environment()
    unsafe = sandbox.from_string("{{ ''.__class__.__mro__ }}")
    import pytest
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        unsafe.render()
