"""The CSS split: each page links the stylesheets that define the classes it uses."""

from __future__ import annotations

import re
from collections import defaultdict

from server.package_data import web_dir
from tests.forms import Client
from tests.support import World
from tests.web.helpers import main_pages

STATIC = web_dir() / "static"
_STYLESHEET = re.compile(r'<link rel="stylesheet" href="/static/([^"?]+)\?v=[^"]+">')


def defined_classes() -> dict[str, set[str]]:
    """class name -> the stylesheets (below /static/) that style it in their own right.

    A class counts where it opens a selector (`.tile a`, `body.kiosk .hint`: tile, kiosk), not
    where a feature adjusts another file's class in its own context (`.token-card .hint`).
    """
    found: dict[str, set[str]] = defaultdict(set)
    for sheet in STATIC.rglob("*.css"):
        text = re.sub(r"/\*.*?\*/", "", sheet.read_text(), flags=re.S)
        for selectors in re.findall(r"([^{}]+)\{", text):
            if selectors.strip().startswith("@"):
                continue
            for selector in selectors.split(","):
                opening = re.split(r"[\s>+~]+", selector.strip())[0]
                for name in re.findall(r"\.(-?[_a-zA-Z][\w-]*)", opening):
                    found[name].add(sheet.relative_to(STATIC).as_posix())
    return found


def test_one_base_and_feature_stylesheets() -> None:
    sheets = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*.css"))
    assert "core/base.css" in sheets
    assert "shell/shell.css" in sheets
    assert all("/" in sheet for sheet in sheets), "every stylesheet belongs to a feature folder"
    # A class is styled in one place only.
    shared = {name: files for name, files in defined_classes().items() if len(files) > 1}
    assert shared == {}


async def test_pages_link_the_stylesheets_of_their_classes(client: Client, world: World) -> None:
    classes = defined_classes()
    pages = await main_pages(client, world)
    assert len(pages) >= 15
    for page, html in pages.items():
        linked = _STYLESHEET.findall(html)
        assert linked[:2] == ["core/base.css", "shell/shell.css"], page
        assert len(linked) == len(set(linked)), page
        used = {c for value in re.findall(r'class="([^"]*)"', html) for c in value.split()}
        for name in sorted(used):
            if name in classes:
                assert classes[name] & set(linked), f"{page}: .{name} needs {classes[name]}"
        # Nothing linked for nothing: each feature stylesheet styles something on the page.
        for sheet in linked[2:]:
            assert any(sheet in classes[name] for name in used if name in classes), (page, sheet)


def test_templates_link_existing_files() -> None:
    for template in (web_dir() / "templates").rglob("*.html"):
        for name in re.findall(r"static\('([^']+)'\)", template.read_text()):
            assert (STATIC / name).is_file(), f"{template.name}: {name}"


def test_every_rule_of_every_stylesheet_is_closed() -> None:
    """A lost `}` (a bad merge) silently swallows the rules after it: braces balance, at no
    point more closed than opened, comments and strings aside."""
    for sheet in sorted(STATIC.rglob("*.css")):
        text = re.sub(r"/\*.*?\*/", "", sheet.read_text(), flags=re.S)
        text = re.sub(r'"[^"\n]*"|\'[^\'\n]*\'', '""', text)
        depth = 0
        for line_number, line in enumerate(text.splitlines(), 1):
            depth += line.count("{") - line.count("}")
            assert depth >= 0, f"{sheet.name}:{line_number}: a `}}` closes nothing"
            assert depth <= 2, f"{sheet.name}:{line_number}: a rule inside a rule (a `}}` lost?)"
        assert depth == 0, f"{sheet.name}: {depth} rule(s) never closed"
