"""The viewer page may be framed by pages of its own origin when opened for a call, only then.

Every other page and API answer stays unframeable (`frame-ancestors 'none'`, DENY).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from tests.dicom_tools.part10 import SERIES_UID, STUDY_UID
from tests.forms import sign_in
from tests.server.viewer.test_pages import ECG_SERIES, VIEW, _store
from tests.support import Client, World


def _framing(headers: Mapping[str, str]) -> tuple[str, str]:
    """The CSP's frame-ancestors and X-Frame-Options of a response."""
    csp = headers["Content-Security-Policy"]
    found = re.search(r"frame-ancestors ([^;]+)", csp)
    assert found, csp
    return found.group(1), headers["X-Frame-Options"]


@pytest.mark.parametrize("series", [None, ECG_SERIES])
async def test_the_viewer_of_a_call_may_be_framed_by_this_origin(
    client: Client, world: World, series: str | None
) -> None:
    await _store(client, world)
    await sign_in(client, "gp-a")
    query = f"?series={series}&call=7" if series else "?call=7"
    response = await client.get(VIEW + query)
    assert response.status == 200
    assert _framing(response.headers) == ("'self'", "SAMEORIGIN")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp  # the rest of the policy is the same
    assert "frame-ancestors 'none'" not in csp
    html = await response.text()
    assert 'data-call="7"' in html
    assert "viewer-framed" in html
    # The series strip keeps the call, so a series opened in the frame is framed too.
    assert f'href="{VIEW}?series={SERIES_UID}&amp;call=7"' in html
    assert '<link rel="modulepreload" href="/static/viewer/call-frame.mjs">' in html


@pytest.mark.parametrize("query", ["", "?call=", "?call=abc", "?call=-1", "?call=1e3", "?call=7x"])
async def test_the_viewer_without_a_call_is_not_framed(
    client: Client, world: World, query: str
) -> None:
    await _store(client, world)
    await sign_in(client, "gp-a")
    response = await client.get(VIEW + query)
    assert response.status == 200
    assert _framing(response.headers) == ("'none'", "DENY")
    html = await response.text()
    assert "data-call=" not in html
    assert "viewer-framed" not in html
    assert "call-frame.mjs" not in html


@pytest.mark.parametrize(
    "path",
    [
        f"/studies/{STUDY_UID}?call=7",
        f"/studies/{STUDY_UID}/view/other?call=7",
        "/consults?call=7",
        "/api/v1/me?call=7",
        "/login?call=7",
        "/static/viewer/viewer.mjs?call=7",
    ],
)
async def test_other_pages_stay_unframeable_with_a_call(
    client: Client, world: World, path: str
) -> None:
    await _store(client, world)
    await sign_in(client, "gp-a")
    response = await client.get(path)
    assert _framing(response.headers) == ("'none'", "DENY"), path


async def test_a_refused_viewer_of_a_call_is_not_framed(client: Client, world: World) -> None:
    await _store(client, world)
    await sign_in(client, "gp-b")  # another clinic: 404
    response = await client.get(f"{VIEW}?call=7")
    assert response.status == 404
    assert _framing(response.headers) == ("'none'", "DENY")
