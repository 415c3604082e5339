"""The visit's language in the kiosk's answers: flag messages and refusals, translated."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from server import keys
from server.errors import InvalidInput
from server.kiosk.triage import Implausible

LOCALES = {"zh": "zh_Hans", "en": "en"}
"""The locale (server.i18n.LOCALES) of each language a person can choose at the kiosk."""


def locale_of(lang: str) -> str:
    """The locale of a visit's language."""
    return LOCALES.get(lang, "en")


def gettext(request: web.Request, lang: str) -> Callable[[str], str]:
    """The translation function of a visit's language (zh or en)."""
    return request.app[keys.CATALOGUES].translations(locale_of(lang)).gettext


def translated(request: web.Request, lang: str, error: Implausible) -> InvalidInput:
    """The same refusal, its message in the visit's language."""
    return InvalidInput(error.text(gettext(request, lang)), details=error.details)
