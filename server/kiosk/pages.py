"""The kiosk app: one page of touch screens for the person at a medical corner.

`kiosk_app` is what an enrolled kiosk gets at `/kiosk` (the enrolment pages call it). Every
load is a fresh start: the visit left open on this device (the previous person's) is closed
first, so a reload never shows anything of anybody. The language is the one chosen on the
first screen (`?lang=zh|en`, sent by the page with `location.replace`), else the browser's.
"""

from __future__ import annotations

from datetime import date

from aiohttp import web

from server import i18n, keys
from server.context import db, principal, recorder
from server.kiosk import visits
from server.templates import render

LANGUAGES = {"zh_Hans": "zh", "en": "en"}
"""The API's language code of each locale (POST /api/v1/kiosk/visits {"language"})."""
BCP47 = {"zh_Hans": "zh-Hans-CN", "en": "en-GB"}
"""The tag the browser formats dates and numbers with (Intl), per locale."""
EXAMPLE_BIRTH = date(1956, 3, 14)
"""The date of birth of the format hint (shown in the page's locale)."""
WARN_SECONDS = 30
"""How long "Are you still there?" counts down before the privacy reset."""


async def kiosk_app(request: web.Request) -> web.Response:
    """The kiosk's screens, in the chosen or negotiated language, after closing any open
    visit of this device (how="reset"); never cached."""
    device = principal(request)
    async with db(request) as session:
        await visits.close_open(
            session=session,
            caller=device,
            audit=recorder(request),
            bus=request.app[keys.EVENT_BUS],
            how="reset",
        )
    chosen = request.query.get("lang") or None
    locale = i18n.negotiate(request.headers.get("Accept-Language"), chosen=chosen)
    settings = request.app[keys.SETTINGS]
    response = render(
        request,
        "kiosk/app.html",
        locale=locale,
        language=LANGUAGES.get(locale, "en"),
        intl_locale=BCP47.get(locale, "en-GB"),
        example_birth=EXAMPLE_BIRTH,
        start_screen="identify" if chosen else "language",
        idle_seconds=settings.kiosk_idle_seconds,
        warn_seconds=min(WARN_SECONDS, settings.kiosk_idle_seconds),
    )
    response.headers["Cache-Control"] = "no-store"
    return response
