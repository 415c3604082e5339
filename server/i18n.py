"""Languages: choosing one for a request, the gettext catalogues, locale formatting.

Doorstep is written in English; `zh_Hans` (Simplified Chinese) is translated through the PO
files under `web/locale/<locale>/LC_MESSAGES/<area>.po` (docs/i18n.md). The catalogues are
read once per application (`Catalogues.load`, kept as `app[keys.CATALOGUES]`), from the PO
files themselves: no compiled `.mo` is committed or needed.

Messages are %-format strings with named placeholders, in Python as in templates (jinja2's
"newstyle" gettext): `_("Your place: %(position)s", position=3)`; a literal % is `%%`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from server.package_data import web_dir

LOCALES = ("en", "zh_Hans")
DEFAULT_LOCALE = "en"
# The Babel (CLDR) locale each of ours is formatted with: zh_Hans is mainland China's
# (2026年12月1日), en is British English, which is how Doorstep writes dates (1 Dec 2026).
FORMAT_LOCALES = {"en": "en_GB", "zh_Hans": "zh_Hans_CN"}
# The BCP 47 tag of each locale, for <html lang> and Content-Language.
LANGUAGE_TAGS = {"en": "en", "zh_Hans": "zh-Hans"}
# Each language's name in that language, for a language switch (never translated).
LANGUAGE_NAMES = {"en": "English", "zh_Hans": "中文"}

_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*|\*")
_Q = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")
# Simplified Chinese: plain zh, the Hans script, and the regions that write it.
_SIMPLIFIED_REGIONS = frozenset({"cn", "sg", "my"})
_TRADITIONAL = frozenset({"hant", "tw", "hk", "mo"})


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; translate it where it is shown."""
    return message


def locale_of(tag: str | None) -> str | None:
    """Our locale for one language tag or locale name ('zh-CN', 'zh_Hans', 'en-GB'), or None.

    zh, zh-Hans(-*), zh-CN, zh-SG and zh-MY are Simplified Chinese; Traditional Chinese
    (zh-Hant, zh-TW, zh-HK, zh-MO) is not offered and gives None, as any other language does.
    """
    if not tag or not _TAG.fullmatch(tag.strip()):
        return None
    language, *rest = tag.strip().lower().replace("_", "-").split("-")
    if language == "en":
        return "en"
    if language == "zh":
        if any(part in _TRADITIONAL for part in rest) and "hans" not in rest:
            return None
        if not rest or rest[0] == "hans" or rest[0] in _SIMPLIFIED_REGIONS:
            return "zh_Hans"
    return None


def negotiate(accept_language: str | None, *, chosen: str | None = None) -> str:
    """The locale to use: the explicit choice if we offer it, else the best of an
    Accept-Language header by its q-values (ties in the header's order), else English."""
    explicit = locale_of(chosen)
    if explicit is not None:
        return explicit
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")):
        tag, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _Q.fullmatch(value) else 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag))
    for _, _, tag in sorted(ranked):
        found = locale_of(tag)
        if found is not None:
            return found
    return DEFAULT_LOCALE


def language_tag(locale: object) -> str:
    """'zh-Hans' or 'en' (BCP 47) for one of our locales; 'en' for anything else."""
    return LANGUAGE_TAGS.get(locale if isinstance(locale, str) else DEFAULT_LOCALE, "en")


def ours(locale: str) -> str:
    """One of LOCALES for a locale or a tag that maps to one ('zh' → 'zh_Hans'); ValueError
    for anything else (a programming error: negotiate() chooses among what we offer)."""
    found = locale_of(locale)
    if found is None:
        raise ValueError(f"not one of our locales: {locale!r} (LOCALES: {LOCALES})")
    return found


def _format_locale(locale: str) -> Locale:
    return Locale.parse(FORMAT_LOCALES[ours(locale)])


@dataclass(frozen=True, slots=True)
class Catalogues:
    """Every locale's translations, merged from its PO files (one per area)."""

    by_locale: Mapping[str, NullTranslations]

    @classmethod
    def load(cls, locale_dir: Path | None = None) -> Catalogues:
        """Read `<locale_dir>/<locale>/LC_MESSAGES/*.po` (default: web/locale) for every
        locale; fuzzy and untranslated entries are left out (the source text is shown)."""
        root = web_dir() / "locale" if locale_dir is None else locale_dir
        return cls(
            {
                locale: _merge(sorted((root / locale / "LC_MESSAGES").glob("*.po")), locale)
                for locale in LOCALES
            }
        )

    def translations(self, locale: str) -> NullTranslations:
        """The translations of one of LOCALES, or of a tag that maps to one ('zh', 'zh-CN');
        ValueError for any other."""
        return self.by_locale[ours(locale)]

    def gettext(self, locale: str) -> Callable[..., str]:
        """`_` for Python code: `_ = catalogues.gettext(locale); _("Hi %(name)s", name=n)`."""
        translate = self.translations(locale).gettext

        def gettext(message: str, /, **variables: Any) -> str:
            return translate(message) % variables

        return gettext

    def ngettext(self, locale: str) -> Callable[..., str]:
        """Plural forms: `ngettext(locale)("%(num)d visit", "%(num)d visits", n)`; the count
        is `num` unless given."""
        translate = self.translations(locale).ngettext

        def ngettext(singular: str, plural: str, number: int, /, **variables: Any) -> str:
            variables.setdefault("num", number)
            return translate(singular, plural, number) % variables

        return ngettext


def _merge(files: Iterable[Path], locale: str) -> NullTranslations:
    merged: Translations | None = None
    for path in files:
        with path.open("rb") as handle:
            catalog: Catalog = read_po(handle, locale=locale, ignore_obsolete=True)
        compiled = io.BytesIO()
        write_mo(compiled, catalog, use_fuzzy=False)
        compiled.seek(0)
        translations = Translations(compiled, domain=path.stem)
        if merged is None:
            merged = translations
        else:
            merged.merge(translations)
    return NullTranslations() if merged is None else merged


# Locale-aware formatting (CLDR data through Babel). A naive datetime is taken as UTC; with
# `tzinfo` a datetime is shown in that time zone (as stored, UTC for our columns, otherwise).
def format_date(
    value: date | datetime, locale: str, format: str = "medium", *, tzinfo: tzinfo | None = None
) -> str:
    """'1 Dec 2026' (en), '2026年12月1日' (zh_Hans); format short, medium, long, full or a
    CLDR pattern."""
    if isinstance(value, datetime) and tzinfo is not None:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        value = aware.astimezone(tzinfo)
    return babel_dates.format_date(value, format, locale=_format_locale(locale))


def format_datetime(
    value: datetime, locale: str, format: str = "medium", *, tzinfo: tzinfo | None = None
) -> str:
    """'1 Dec 2026, 09:05:07' (en), '2026年12月1日 09:05:07' (zh_Hans)."""
    return babel_dates.format_datetime(value, format, tzinfo=tzinfo, locale=_format_locale(locale))


def format_time(
    value: time | datetime, locale: str, format: str = "medium", *, tzinfo: tzinfo | None = None
) -> str:
    """'09:05:07' in both; `format="short"` for '09:05'."""
    return babel_dates.format_time(value, format, tzinfo=tzinfo, locale=_format_locale(locale))


def format_number(value: float | Decimal, locale: str, decimals: int | None = None) -> str:
    """'12,345.678'; with `decimals` exactly that many fraction digits ('5.60'), rounded
    half to even."""
    if decimals is None:
        pattern = None
    elif decimals < 0:
        raise ValueError("decimals must be 0 or more")
    else:
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return babel_numbers.format_decimal(value, pattern, locale=_format_locale(locale))
