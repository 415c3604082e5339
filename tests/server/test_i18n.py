"""Languages: negotiation, the catalogues and their files, translated pages, locale formatting,
and that everything the kiosk says has a Chinese translation."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import ChoiceLoader, DictLoader, Environment

from server import i18n, keys
from server.app import create_app
from server.package_data import web_dir
from server.settings import Settings
from server.templates import StaticFiles, create_environment, render

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = web_dir() / "locale"
PO_FILES = sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))
# What the kiosk shows must all be translated (issue 12: Chinese and English).
KIOSK = ("web/templates/kiosk", "server/kiosk")
SHANGHAI = ZoneInfo("Asia/Shanghai")


# Negotiation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("", "en"),
        ("zh-CN", "zh_Hans"),
        ("ZH-cn", "zh_Hans"),
        ("zh", "zh_Hans"),
        ("zh-SG", "zh_Hans"),
        ("zh-Hans", "zh_Hans"),
        ("zh-Hans-HK", "zh_Hans"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_Hans"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en-GB", "en"),
        ("fr-FR,zh-CN;q=0.5,en;q=0.4", "zh_Hans"),  # fr is not offered: the next best
        ("en;q=0.4, zh-CN;q=0.5", "zh_Hans"),  # by q-value, not by order
        ("en;q=0.5, zh-CN", "zh_Hans"),  # no q is 1
        ("zh;q=0.8, en;q=0.8", "zh_Hans"),  # a tie: the header's order
        ("en;q=0.8, zh;q=0.8", "en"),
        ("zh-CN;q=0, en;q=0.1", "en"),  # q=0: not acceptable
        ("zh-CN;q=0, fr", "en"),
        ("zh-CN;q=high, en;q=0.1", "en"),  # an invalid q-value is not acceptable
        ("zh-CN;q=1.5, en;q=0.1", "en"),
        ("zh-TW", "en"),  # Traditional Chinese is not offered
        ("zh-Hant", "en"),
        ("zh-Hant-CN", "en"),
        ("zh-HK,en;q=0.1", "en"),
        ("zh-TW,zh;q=0.9", "zh_Hans"),  # but plain zh is welcome
        ("de-DE,fr;q=0.9", "en"),
        ("*", "en"),
        ("<script>;;,,;q=,", "en"),
        ("zh-CN;q=0.8;level=1", "zh_Hans"),
    ],
)
def test_negotiate_accept_language(header: str | None, locale: str) -> None:
    assert i18n.negotiate(header) == locale


@pytest.mark.parametrize(
    ("chosen", "header", "locale"),
    [
        ("zh", "en", "zh_Hans"),
        ("zh_Hans", "en", "zh_Hans"),
        ("zh-CN", None, "zh_Hans"),
        ("en", "zh-CN", "en"),
        ("en-GB", "zh-CN", "en"),
        ("fr", "zh-CN", "zh_Hans"),  # a choice that is not offered: the header decides
        ("zh-TW", None, "en"),
        ("", "zh-CN", "zh_Hans"),
        (None, "zh-CN", "zh_Hans"),
    ],
)
def test_an_explicit_choice_wins(chosen: str | None, header: str | None, locale: str) -> None:
    assert i18n.negotiate(header, chosen=chosen) == locale


def test_every_locale_negotiates_to_itself() -> None:
    assert i18n.DEFAULT_LOCALE in i18n.LOCALES
    for locale in i18n.LOCALES:
        assert i18n.negotiate(None, chosen=locale) == locale
        assert i18n.negotiate(i18n.language_tag(locale)) == locale
        assert locale in i18n.LANGUAGE_NAMES
    assert i18n.language_tag("zh_Hans") == "zh-Hans"
    assert i18n.language_tag("en") == "en"
    assert i18n.language_tag(None) == "en"


# Formatting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "locale", "form", "shown"),
    [
        (date(2026, 12, 1), "zh_Hans", "medium", "2026年12月1日"),
        (date(2026, 12, 1), "en", "medium", "1 Dec 2026"),
        (date(2026, 12, 1), "en", "long", "1 December 2026"),
        (date(2026, 12, 1), "zh_Hans", "full", "2026年12月1日星期二"),
        (date(2026, 12, 1), "en", "full", "Tuesday, 1 December 2026"),
        (date(1956, 3, 14), "zh_Hans", "short", "1956/3/14"),
        (datetime(2026, 12, 1, 23, 30, tzinfo=UTC), "zh_Hans", "medium", "2026年12月1日"),
    ],
)
def test_format_date(value: date, locale: str, form: str, shown: str) -> None:
    assert i18n.format_date(value, locale, form) == shown


def test_dates_and_times_in_a_time_zone() -> None:
    late = datetime(2026, 12, 1, 20, 30, 5, tzinfo=UTC)  # 04:30 on 2 December in Beijing
    assert i18n.format_date(late, "zh_Hans", tzinfo=SHANGHAI) == "2026年12月2日"
    assert i18n.format_date(late.replace(tzinfo=None), "en", tzinfo=SHANGHAI) == "2 Dec 2026"
    assert i18n.format_datetime(late, "zh_Hans", tzinfo=SHANGHAI) == "2026年12月2日 04:30:05"
    assert i18n.format_datetime(late, "en") == "1 Dec 2026, 20:30:05"
    assert i18n.format_datetime(late, "zh_Hans", "short") == "2026/12/1 20:30"
    assert i18n.format_time(late, "en", "short", tzinfo=SHANGHAI) == "04:30"
    assert i18n.format_time(time(9, 5, 7), "zh_Hans") == "09:05:07"


@pytest.mark.parametrize(
    ("value", "locale", "decimals", "shown"),
    [
        (12345.678, "en", None, "12,345.678"),
        (12345.678, "zh_Hans", None, "12,345.678"),
        (5.6, "zh_Hans", 1, "5.6"),
        (5.6, "en", 2, "5.60"),
        (7, "en", 1, "7.0"),
        (Decimal("7.25"), "en", 1, "7.2"),  # half to even
        (Decimal("7.35"), "zh_Hans", 1, "7.4"),
        (120.5, "en", 0, "120"),
        (1234567, "zh_Hans", 0, "1,234,567"),
        (-3.5, "en", None, "-3.5"),
    ],
)
def test_format_number(value: float, locale: str, decimals: int | None, shown: str) -> None:
    assert i18n.format_number(value, locale, decimals) == shown


def test_formatting_refuses_other_locales() -> None:
    with pytest.raises(ValueError, match="locale"):
        i18n.format_date(date(2026, 1, 1), "fr")
    with pytest.raises(ValueError, match="locale"):
        i18n.format_number(1, "zh-TW")
    assert i18n.format_date(date(2026, 1, 2), "zh") == "2026年1月2日"  # a tag that maps
    with pytest.raises(ValueError, match="decimals"):
        i18n.format_number(1, "en", -1)


# The catalogues ------------------------------------------------------------------------------


def _po(path: Path, header_language: str, entries: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        'msgid ""\nmsgstr ""\n'
        f'"Language: {header_language}\\n"\n'
        '"Content-Type: text/plain; charset=UTF-8\\n"\n'
        '"Plural-Forms: nplurals=1; plural=0;\\n"\n\n' + entries,
        encoding="utf-8",
    )
    return path


TEST_MESSAGES = """
msgid "Back"
msgstr "返回上一步"

#, python-format
msgid "Hello %(name)s"
msgstr "%(name)s您好"

#, python-format
msgid "%(num)d person waiting"
msgid_plural "%(num)d people waiting"
msgstr[0] "%(num)d 人在等候"

#, python-format
msgid "%(count)s person waiting"
msgid_plural "%(count)s people waiting"
msgstr[0] "%(count)s 人在等候"

msgid "Your blood pressure is very high. See a doctor now."
msgstr "您的血压非常高。请立即就医。"

msgctxt "button"
msgid "Open"
msgstr "打开"

#, fuzzy
msgid "Guessed"
msgstr "猜的"

msgid "Not translated"
msgstr ""

#~ msgid "Gone"
#~ msgstr "已删除"
"""


@pytest.fixture
def locale_dir(tmp_path: Path) -> Path:
    root = tmp_path / "locale"
    _po(root / "zh_Hans" / "LC_MESSAGES" / "a-test.po", "zh_Hans", TEST_MESSAGES)
    # A second area: merged with the first; the shipped common.po is not in this folder.
    _po(
        root / "zh_Hans" / "LC_MESSAGES" / "b-other.po",
        "zh_Hans",
        'msgid "Finish"\nmsgstr "全部完成"\n',
    )
    return root


def test_catalogues_merge_the_areas_and_leave_out_fuzzy_and_obsolete(locale_dir: Path) -> None:
    catalogues = i18n.Catalogues.load(locale_dir)
    _ = catalogues.gettext("zh_Hans")
    assert _("Back") == "返回上一步"
    assert _("Finish") == "全部完成"  # from the other file
    assert _("Hello %(name)s", name="王芳") == "王芳您好"
    assert _("Guessed") == "Guessed"  # fuzzy: the source text
    assert _("Not translated") == "Not translated"
    assert _("Gone") == "Gone"
    assert _("100%% sure") == "100% sure"  # messages are %-format strings everywhere
    assert catalogues.translations("zh_Hans").pgettext("button", "Open") == "打开"
    ngettext = catalogues.ngettext("zh_Hans")
    assert ngettext("%(num)d person waiting", "%(num)d people waiting", 3) == "3 人在等候"
    english = catalogues.ngettext("en")
    assert english("%(num)d person waiting", "%(num)d people waiting", 1) == "1 person waiting"
    assert english("%(num)d person waiting", "%(num)d people waiting", 2) == "2 people waiting"
    assert catalogues.gettext("en")("Back") == "Back"  # English has no catalogue: identity
    assert catalogues.gettext("zh")("Back") == "返回上一步"  # the kiosk's "language": "zh"
    with pytest.raises(ValueError, match="locale"):
        catalogues.translations("fr")


def test_the_shipped_catalogues_load(tmp_path: Path) -> None:
    catalogues = i18n.Catalogues.load()
    assert catalogues.gettext("zh_Hans")("Back") == "返回"
    assert catalogues.ngettext("zh_Hans")("%(num)d minute", "%(num)d minutes", 5) == "5 分钟"
    app = create_app(Settings(data_dir=tmp_path))
    assert app[keys.CATALOGUES].gettext("zh_Hans")("Back") == "返回"


# Pages ---------------------------------------------------------------------------------------

PAGE = """{% extends "base.html" %}
{% import "_i18n_macros.html" as m %}
{% block main %}
<p id="back">{{ _("Back") }}</p>
<p id="hello">{{ _("Hello %(name)s", name=person) }}</p>
<p id="trans">{% trans name=person %}Hello {{ name }}{% endtrans %}</p>
<p id="trimmed">{% trans %}
  Your blood pressure is very high.
  See a doctor now.
{% endtrans %}</p>
<p id="plural">{% trans count=waiting %}{{ count }} person waiting{% pluralize %}
  {{ count }} people waiting{% endtrans %}</p>
<p id="context">{{ pgettext("button", "Open") }}</p>
<p id="macro">{{ m.back() }}</p>
<p id="date">{{ day|format_date }}</p>
<p id="datetime">{{ moment|format_datetime("short", tzinfo) }}</p>
<p id="time">{{ moment|format_time("short") }}</p>
<p id="number">{{ glucose|format_number(1) }}</p>
<p id="empty">{{ nothing|format_date }}</p>
<p id="locale">{{ locale }}</p>
{% endblock %}
"""
MACROS = '{% macro back() %}<a href="/">{{ _("Back") }}</a>{% endmacro %}'


@pytest.fixture
async def pages(
    locale_dir: Path, tmp_path: Path
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A small application that renders PAGE through render(), with the test catalogues."""
    app = web.Application()
    app[keys.SETTINGS] = Settings(data_dir=tmp_path)
    environment = create_environment(StaticFiles("/static", web_dir() / "static"))
    assert environment.loader is not None
    environment.loader = ChoiceLoader(
        [DictLoader({"page.html": PAGE, "_i18n_macros.html": MACROS}), environment.loader]
    )
    app[keys.TEMPLATES] = environment
    app[keys.CATALOGUES] = i18n.Catalogues.load(locale_dir)

    async def page(request: web.Request) -> web.Response:
        locale = request.query.get("locale")
        return render(
            request,
            "page.html",
            locale=locale,
            person=request.query.get("name", "王芳"),
            waiting=int(request.query.get("waiting", "1")),
            day=date(2026, 12, 1),
            moment=datetime(2026, 12, 1, 20, 30, tzinfo=UTC),
            tzinfo=SHANGHAI,
            glucose=5.55,
            nothing=None,
        )

    app.router.add_get("/page", page)
    async with TestClient(TestServer(app)) as client:
        yield client


def _parts(html: str) -> dict[str, str]:
    return {m[1]: m[2].strip() for m in re.finditer(r'<p id="(\w+)">(.*?)</p>', html, re.S)}


async def test_a_page_in_chinese(pages: TestClient[web.Request, web.Application]) -> None:
    response = await pages.get("/page", params={"locale": "zh_Hans", "waiting": "4"})
    html = await response.text()
    assert response.status == 200
    assert response.headers["Content-Language"] == "zh-Hans"
    assert '<html lang="zh-Hans">' in html
    assert _parts(html) == {
        "back": "返回上一步",
        "hello": "王芳您好",
        "trans": "王芳您好",
        "trimmed": "您的血压非常高。请立即就医。",
        "plural": "4 人在等候",
        "context": "打开",
        "macro": '<a href="/">返回上一步</a>',  # an imported macro speaks the page's language
        "date": "2026年12月1日",
        "datetime": "2026/12/2 04:30",
        "time": "20:30",
        "number": "5.6",  # Babel rounds the float's shortest repr, 5.55, half to even
        "empty": "—",
        "locale": "zh_Hans",
    }


@pytest.mark.parametrize("locale", [None, "en", "en-GB"])
async def test_a_page_in_english(
    pages: TestClient[web.Request, web.Application], locale: str | None
) -> None:
    params = {"waiting": "1"} | ({"locale": locale} if locale else {})
    response = await pages.get("/page", params=params)
    html = await response.text()
    assert '<html lang="en">' in html
    assert response.headers.get("Content-Language") == (None if locale is None else "en")
    assert _parts(html) == {
        "back": "Back",
        "hello": "Hello 王芳",
        "trans": "Hello 王芳",
        "trimmed": "Your blood pressure is very high. See a doctor now.",
        "plural": "1 person waiting",
        "context": "Open",
        "macro": '<a href="/">Back</a>',
        "date": "1 Dec 2026",
        "datetime": "02/12/2026, 04:30",
        "time": "20:30",
        "number": "5.6",
        "empty": "—",
        "locale": "en",
    }


async def test_a_page_in_a_tag_that_maps_to_a_locale(
    pages: TestClient[web.Request, web.Application],
) -> None:
    html = await (await pages.get("/page", params={"locale": "zh-CN"})).text()
    assert _parts(html)["back"] == "返回上一步"


async def test_the_next_page_is_english_again(
    pages: TestClient[web.Request, web.Application],
) -> None:
    await pages.get("/page", params={"locale": "zh_Hans"})
    html = await (await pages.get("/page")).text()
    assert _parts(html)["back"] == "Back"


@pytest.mark.parametrize("locale", ["zh_Hans", "en", None])
async def test_placeholders_are_escaped_in_translated_text(
    pages: TestClient[web.Request, web.Application], locale: str | None
) -> None:
    hostile = '<script>alert("x")</script>&'
    params = {"name": hostile} | ({"locale": locale} if locale else {})
    parts = _parts(await (await pages.get("/page", params=params)).text())
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;"
    for part in ("hello", "trans"):
        assert "<script" not in parts[part]
        assert escaped in parts[part], parts[part]


async def test_an_unknown_locale_is_a_programming_error(
    pages: TestClient[web.Request, web.Application],
) -> None:
    response = await pages.get("/page", params={"locale": "fr"})
    assert response.status == 500


def test_the_environment_without_a_page_language_is_english() -> None:
    environment = create_environment(StaticFiles("/static", web_dir() / "static"))
    template = environment.from_string(
        '{{ _("Back") }}|{{ _("%(n)s<b>", n="<i>") }}|{{ day|format_date }}|'
        '{{ 1234.5|format_number }}|{{ ngettext("%(num)d minute", "%(num)d minutes", 2) }}'
    )
    assert template.render(day=date(2026, 12, 1)) == (
        "Back|&lt;i&gt;<b>|1 Dec 2026|1,234.5|2 minutes"
    )


def test_extraction_options_match_the_environment() -> None:
    """babel.cfg extracts templates the way the environment reads them: the same msgids."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    methods = dict((method, pattern) for pattern, method in method_map)
    assert set(methods) == {"python", "jinja2"}
    options = options_map[methods["jinja2"]]
    environment: Environment = create_environment(StaticFiles("/static", web_dir() / "static"))
    assert options["newstyle_gettext"] == "true"
    assert environment.newstyle_gettext  # type: ignore[attr-defined]
    assert options["trimmed"] == "true"
    assert environment.policies["ext.i18n.trimmed"] is True
    assert options["trim_blocks"] == str(environment.trim_blocks).lower()
    assert options["lstrip_blocks"] == str(environment.lstrip_blocks).lower()


# The PO files --------------------------------------------------------------------------------

_PYTHON_FORMAT = re.compile(r"%(?:\(([A-Za-z_]\w*)\))?[-#0 +]*\d*(?:\.\d+)?([a-z%])", re.I)
_BRACE_FORMAT = re.compile(r"(?<!\{)\{([A-Za-z_0-9]*)(?:[!:][^{}]*)?\}(?!\})")


def _python_placeholders(text: str) -> list[str]:
    """The named %-placeholders of a message; a bare %s or a lone % is an error here."""
    names = []
    for found in _PYTHON_FORMAT.finditer(text):
        if found[2] == "%":
            continue
        if found[1] is None:
            raise ValueError(f"an unnamed placeholder {found[0]!r}: name it, %(name)s")
        names.append(found[1])
    return names


def _problems(catalog: Catalog) -> Iterable[str]:
    for message, errors in catalog.check():
        for error in errors:
            yield f"{message.id!r}: {error}"
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            yield f"{message.id!r} is fuzzy: check the translation and remove the flag"
        yield from _placeholder_problems(message)
    for message in catalog.obsolete.values():
        yield f"{message.id!r} is obsolete (#~): remove it"


def _placeholder_problems(message: Message) -> Iterable[str]:
    ids = list(message.id) if isinstance(message.id, tuple | list) else [message.id]
    strings = message.string if isinstance(message.string, tuple | list) else [message.string]
    try:
        wanted = {name for text in ids for name in _python_placeholders(text)}
        values = dict.fromkeys(wanted | {"num"}, 1)
        for text in ids:
            text % values  # a template formats every message, even with no placeholder
    except (ValueError, KeyError, TypeError) as error:
        yield f"{message.id!r}: {error}"
        return
    braces = {name for text in ids for name in _BRACE_FORMAT.findall(text)}
    for index, string in enumerate(strings):
        if not string:
            continue
        try:
            found = set(_python_placeholders(string))
            string % values
        except (ValueError, KeyError, TypeError) as error:
            yield f"{message.id!r}: msgstr {string!r}: {error}"
            continue
        # Every form of a plural names what the plural names (Chinese has one form for all).
        expected = set(_python_placeholders(ids[-1])) if len(ids) > 1 else wanted
        if not (expected <= found <= wanted):
            yield f"{message.id!r}: msgstr[{index}] has {sorted(found)}, not {sorted(expected)}"
        if set(_BRACE_FORMAT.findall(string)) != braces:
            yield f"{message.id!r}: msgstr {string!r}: braces differ from {sorted(braces)}"


def _read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, abort_invalid=True)


def test_there_are_catalogues() -> None:
    assert (LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "common.po") in PO_FILES
    assert {path.parents[1].name for path in PO_FILES} <= set(i18n.LOCALES)


@pytest.mark.parametrize("path", PO_FILES, ids=lambda path: path.relative_to(LOCALE_DIR).as_posix())
def test_po_file(path: Path) -> None:
    catalog = _read(path)
    assert str(catalog.locale) == path.parents[1].name, "the Language header names the folder"
    assert catalog.charset.lower() == "utf-8"
    assert list(_problems(catalog)) == []


def test_the_po_checks_find_problems(tmp_path: Path) -> None:
    path = _po(
        tmp_path / "bad.po",
        "zh_Hans",
        TEST_MESSAGES
        + '\n#, python-format\nmsgid "%(a)s and %(b)s"\nmsgstr "%(a)s 和 %(c)s"\n'
        + '\nmsgid "Wait {seconds} s"\nmsgstr "等待 {秒} 秒"\n'
        + '\nmsgid "Hi %(name)s"\nmsgstr "你好"\n'
        + '\nmsgid "100%"\nmsgstr "100%"\n'
        + '\nmsgid "Done"\nmsgstr "完成 %s"\n',
    )
    problems = "\n".join(_problems(_read(path)))
    assert "'Guessed' is fuzzy" in problems
    assert "'Gone' is obsolete" in problems
    assert "%(a)s and %(b)s" in problems
    assert "Wait {seconds} s" in problems
    assert "'Hi %(name)s': msgstr[0] has []" in problems
    assert "'100%'" in problems
    assert "'Done'" in problems
    assert "Hello %(name)s" not in problems
    assert "person waiting" not in problems


def _conflicts(locale_dir: Path) -> list[str]:
    """Messages that two PO files of one locale translate differently."""
    found = []
    for locale in i18n.LOCALES:
        seen: dict[tuple[object, str | None], tuple[object, str]] = {}
        for path in sorted((locale_dir / locale / "LC_MESSAGES").glob("*.po")):
            for message in _read(path):
                if not message.id or not message.string or message.fuzzy:
                    continue
                key = (message.id, message.context)
                first = seen.setdefault(key, (message.string, path.name))
                if first[0] != message.string:
                    found.append(f"{locale}: {message.id!r} in {first[1]} and {path.name}")
    return found


def test_no_two_areas_translate_a_message_differently() -> None:
    assert _conflicts(LOCALE_DIR) == []


def test_the_conflict_check_finds_two_translations(locale_dir: Path) -> None:
    assert _conflicts(locale_dir) == []
    _po(
        locale_dir / "zh_Hans" / "LC_MESSAGES" / "c-third.po",
        "zh_Hans",
        'msgid "Back"\nmsgstr "返回上一步"\n\nmsgid "Finish"\nmsgstr "结束"\n',
    )
    assert _conflicts(locale_dir) == ["zh_Hans: 'Finish' in b-other.po and c-third.po"]


# Completeness --------------------------------------------------------------------------------


def _extracted(root: Path, folders: Iterable[str]) -> dict[tuple[str, str | None], str]:
    """(msgid, context) → 'file:line' for every message pybabel finds in the folders, with
    babel.cfg's methods and options."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[tuple[str, str | None], str] = {}
    for folder in folders:
        if not (root / folder).is_dir():
            continue
        for filename, line, message, _comments, context in extract_from_dir(
            root / folder, method_map, options_map, keywords=DEFAULT_KEYWORDS
        ):
            msgid = message if isinstance(message, str) else message[0]
            if msgid:
                found.setdefault((msgid, context), f"{folder}/{filename}:{line}")
    return found


def _translated(locale_dir: Path, locale: str) -> set[tuple[str, str | None]]:
    done = set()
    for path in sorted((locale_dir / locale / "LC_MESSAGES").glob("*.po")):
        for message in _read(path):
            strings = message.string if isinstance(message.string, tuple) else [message.string]
            if message.id and not message.fuzzy and all(strings):
                msgid = message.id if isinstance(message.id, str) else message.id[0]
                done.add((msgid, message.context))
    return done


def _untranslated(root: Path, folders: Iterable[str], locale_dir: Path) -> list[str]:
    translated = _translated(locale_dir, "zh_Hans")
    return sorted(
        f"{where}: {msgid!r}"
        for (msgid, context), where in _extracted(root, folders).items()
        if (msgid, context) not in translated
    )


def test_the_kiosk_is_translated() -> None:
    if not _extracted(ROOT, KIOSK):
        pytest.skip("the kiosk has no messages yet")
    assert _untranslated(ROOT, KIOSK, LOCALE_DIR) == []


def test_the_completeness_check_finds_untranslated_messages(tmp_path: Path) -> None:
    screen = tmp_path / "web" / "templates" / "kiosk" / "screen.html"
    screen.parent.mkdir(parents=True)
    screen.write_text(
        '{% extends "base.html" %}{% block main %}\n'
        '<h1>{{ _("Back") }}</h1>\n'
        "{% trans %}\n  Your blood pressure is very high.\n  See a doctor now.\n{% endtrans %}\n"
        '<p>{{ _("Hello %(name)s", name=name) }}</p>\n'
        '<p>{{ ngettext("%(num)d person waiting", "%(num)d people waiting", n) }}</p>\n'
        '<p>{{ _("Guessed") }}</p>\n'  # fuzzy in the catalogue: not translated
        "<p>{% trans %}Measure again{% endtrans %}</p>\n"
        '<p>{{ pgettext("button", "Open") }} {{ pgettext("menu", "Open") }}</p>\n'
        "{% endblock %}\n"
    )
    flags = tmp_path / "server" / "kiosk" / "flags.py"
    flags.parent.mkdir(parents=True)
    flags.write_text(
        "from server.i18n import N_\n\n"
        'CRISIS = N_("Your blood pressure is very high. See a doctor now.")\n'
        'LOW = N_("Your oxygen level is low.")\n'
    )
    locale_dir = tmp_path / "locale"
    _po(locale_dir / "zh_Hans" / "LC_MESSAGES" / "kiosk.po", "zh_Hans", TEST_MESSAGES)
    assert len(_extracted(tmp_path, KIOSK)) == 9
    assert _untranslated(tmp_path, KIOSK, locale_dir) == [
        "server/kiosk/flags.py:4: 'Your oxygen level is low.'",
        "web/templates/kiosk/screen.html:10: 'Measure again'",
        "web/templates/kiosk/screen.html:11: 'Open'",  # the menu's; the button's is translated
        "web/templates/kiosk/screen.html:9: 'Guessed'",
    ]


# Packaging -----------------------------------------------------------------------------------


def test_the_catalogues_are_packaged() -> None:
    """web/ is the wheel's server/_web, PO files and all (server.package_data finds it)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["force-include"]["web"] == "server/_web"
    assert {"web", "babel.cfg"} <= set(
        project["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    )
    assert "babel" in " ".join(project["project"]["dependencies"])
    ignored = (ROOT / ".gitignore").read_text().split()
    assert not [pattern for pattern in ignored if pattern.endswith((".po", "locale/", "locale"))]
