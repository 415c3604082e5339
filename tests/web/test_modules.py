"""The module rule (docs/frontend.md): native ES modules, relative imports, no globals."""

from __future__ import annotations

import posixpath
import re

from server.package_data import web_dir

STATIC = web_dir() / "static"
TEMPLATES = web_dir() / "templates"
_COMMENTS = re.compile(r"/\*.*?\*/|^\s*//.*$", re.S | re.M)
_SPECIFIERS = re.compile(
    r"""(?:\bimport\s*\(\s*|\bimport\s+(?:[\w*{}\s,$]+\s+from\s+)?|\bexport\s+[\w*{}\s,$]+\s+from\s+)["']([^"']+)["']"""
)
_MODULE_NAME = re.compile(r'static moduleName = "([a-z][a-z0-9-]*)";')


def modules() -> dict[str, str]:
    """path below /static/ -> source without comments, of every module."""
    return {
        p.relative_to(STATIC).as_posix(): _COMMENTS.sub("", p.read_text())
        for p in sorted(STATIC.rglob("*.mjs"))
    }


def registered() -> dict[str, str]:
    """data-module name -> module path, from core/components.mjs."""
    registry = modules()["core/components.mjs"]
    found = {}
    for specifier in _SPECIFIERS.findall(registry):
        path = posixpath.normpath(f"core/{specifier}")
        names = _MODULE_NAME.findall(modules()[path])
        assert len(names) == 1, path
        found[names[0]] = path
    return found


def test_browser_code_is_modules_in_feature_folders() -> None:
    files = [p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith(".js")], "classic scripts are gone: use .mjs"
    assert all("/" in name for name in modules()), "each module lives in a feature folder"
    assert len(modules()) >= 10


def test_imports_are_relative_and_resolve() -> None:
    sources = modules()
    for name, source in sources.items():
        for specifier in _SPECIFIERS.findall(source):
            assert specifier.startswith(("./", "../")), f"{name}: bare or absolute {specifier}"
            assert specifier.endswith(".mjs"), f"{name}: {specifier} (no query: see the cache rule)"
            target = posixpath.normpath(f"{posixpath.dirname(name)}/{specifier}")
            assert target in sources, f"{name}: {specifier} does not exist"


def test_no_globals_and_no_var() -> None:
    for name, source in modules().items():
        assert not re.search(r"\bvar\s", source), name
        assert not re.search(r"\b(?:window|globalThis|self)\.[\w$]+\s*=[^=]", source), name
        assert "Doorstep" not in re.sub(r"([\"'`]).*?\1", "", source), name


def test_every_component_is_registered_named_and_used() -> None:
    components = registered()
    assert set(components) >= {"idle-logoff", "error-summary", "copy-button", "upload"}
    for name, path in components.items():
        assert path.endswith(f"/{name}.mjs"), f"{name} lives in {path}"
        assert "export default class" in modules()[path], path
    used = set()
    for template in TEMPLATES.rglob("*.html"):
        used |= set(re.findall(r'data-module="([^"]+)"', template.read_text()))
    assert used == set(components), "registered but unused, or used but not registered"


def test_one_module_entry_and_no_other_scripts() -> None:
    scripts = {}
    for template in TEMPLATES.rglob("*.html"):
        found = re.findall(r"<script\b[^>]*>", template.read_text())
        if found:
            scripts[template.relative_to(TEMPLATES).as_posix()] = found
    assert scripts == {
        "base.html": ['<script type="module" src="{{ static(\'core/main.mjs\') }}">']
    }
