"""Who may import whom: the layering rules of docs/architecture.md, read from the source's AST.

- The kernel (the top-level modules of `server`, except the composition roots) imports no
  feature at run time; a feature's types may be named under `if TYPE_CHECKING:`.
- No feature imports a composition root (`server.app`, `server.cli`, `server.demo`,
  `server.doctor`).
- Pages (`server/pages/`, any `pages.py` or `*_pages.py`) and API views (`views.py`) never
  import another feature's models, nor the audit feature: services write audit events. The
  audit feature's own pages (the log viewer) call its queries, which audit the reading.
- The command line writes no audit event itself (no `.record(` call in `server/cli.py`).
- `server/events/bus.py` (the interface) imports none of its implementations.
- `dicom_tools` imports neither `server`, nor aiohttp, nor SQLAlchemy.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOTS = frozenset({"server.app", "server.cli", "server.demo", "server.doctor"})
WEB_OR_DATABASE = ("aiohttp", "sqlalchemy")


@dataclass(frozen=True, slots=True)
class Module:
    """A module of the tree: its dotted name, its file name and its parsed source."""

    name: str
    filename: str
    tree: ast.Module

    @property
    def feature(self) -> str | None:
        """The feature package the module belongs to (`accounts`, `archive`, …), if any."""
        parts = self.name.split(".")
        return parts[1] if parts[0] == "server" and len(parts) > 2 else None

    @property
    def is_kernel(self) -> bool:
        """A top-level module of `server` that is not a composition root."""
        parts = self.name.split(".")
        return (
            parts[0] == "server"
            and len(parts) == 2
            and self.name not in COMPOSITION_ROOTS
            and parts[1] != "__init__"
        )

    @property
    def is_page_or_view(self) -> bool:
        """Browser pages and JSON API views: thin layers over the services."""
        stem = self.filename.removesuffix(".py")
        return self.feature == "pages" or stem in ("pages", "views") or stem.endswith("_pages")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every import that runs, skipping `if TYPE_CHECKING:` blocks.

    `from server.x import y` yields both `server.x` and `server.x.y`, since y may be a module.
    """
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        pending.extend(ast.iter_child_nodes(node))


def _feature_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if parts[0] == "server" and len(parts) > 2 else None


def violations(module: Module, features: frozenset[str]) -> list[str]:
    """Every rule of this file that the module breaks, as readable lines."""
    found: list[str] = []
    where = f"{module.name}"
    for line, imported in runtime_imports(module.tree):
        target = _feature_of(imported)
        head = imported.split(".")[0]
        is_feature = target in features or (
            imported.count(".") == 1 and imported.split(".")[1] in features
        )
        if module.is_kernel and imported.startswith("server.") and is_feature:
            found.append(f"{where}:{line}: the kernel imports the feature module {imported}")
        if module.feature is not None and imported in COMPOSITION_ROOTS:
            found.append(f"{where}:{line}: a feature imports the composition root {imported}")
        if module.is_page_or_view:
            if target is not None and target != module.feature and imported.endswith(".models"):
                found.append(f"{where}:{line}: a page or view imports another feature's models")
            if (imported == "server.audit" or target == "audit") and module.feature != "audit":
                found.append(f"{where}:{line}: a page or view imports the audit feature")
        if module.name == "server.events.bus" and imported in (
            "server.events.memory",
            "server.events.postgres",
        ):
            found.append(f"{where}:{line}: the bus interface imports an implementation")
        if module.name.startswith("dicom_tools") and head in ("server", *WEB_OR_DATABASE):
            found.append(f"{where}:{line}: dicom_tools imports {imported}")
    if module.name == "server.cli":
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
            ):
                found.append(f"{where}:{node.lineno}: the command line writes an audit event")
    return found


def _modules(package: str) -> Iterator[Module]:
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__")
        yield Module(name, path.name, ast.parse(path.read_text(), str(path)))


def _features() -> frozenset[str]:
    return frozenset(p.name for p in (ROOT / "server").iterdir() if (p / "__init__.py").exists())


def test_the_tree_follows_the_import_rules() -> None:
    features = _features()
    assert {"accounts", "archive", "audit", "pages", "patients", "uploads"} <= features
    broken = [
        line
        for package in ("server", "dicom_tools")
        for module in _modules(package)
        for line in violations(module, features)
    ]
    assert broken == []


FEATURES = frozenset({"accounts", "archive", "audit", "events", "pages", "patients"})


def _module(name: str, source: str) -> Module:
    return Module(name, name.rsplit(".", 1)[-1] + ".py", ast.parse(source))


@pytest.mark.parametrize(
    ("name", "source", "broken"),
    [
        (
            "server.keys",
            "from server.archive.service import Archive",
            "the kernel imports the feature module server.archive.service",
        ),
        ("server.context", "from server import accounts", "the kernel imports the feature"),
        ("server.endpoint", "import server.accounts.models", "the kernel imports the feature"),
        ("server.archive.storing", "from server import app", "composition root server.app"),
        (
            "server.patients.pages",
            "from server.archive.models import Study",
            "another feature's models",
        ),
        ("server.accounts.admin_pages", "from server.audit import service", "the audit feature"),
        ("server.patients.views", "from server.audit.service import Recorder", "audit feature"),
        ("server.pages.home", "from server.accounts.models import User", "another feature's"),
        ("server.cli", "async def f(a, s):\n    await a.record(s, action='x')", "audit event"),
        ("server.events.bus", "from server.events.memory import X", "an implementation"),
        ("dicom_tools.frames", "from server.keys import ARCHIVE", "dicom_tools imports server"),
        ("dicom_tools.frames", "import aiohttp.web", "dicom_tools imports aiohttp"),
    ],
)
def test_a_broken_rule_is_reported(name: str, source: str, broken: str) -> None:
    found = violations(_module(name, source), FEATURES)
    assert len(found) >= 1
    assert any(broken in line for line in found), found


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("server.keys", "if TYPE_CHECKING:\n    from server.archive.service import Archive"),
        ("server.app", "from server.archive import routes"),
        ("server.patients.pages", "from server.patients.models import Patient"),
        ("server.uploads.pages", "from server.archive import links"),
        ("server.accounts.administration", "from server.audit.service import Recorder"),
        ("server.audit.pages", "from server.audit import queries"),
        ("server.cli", "from server.audit import service as audit\naudit.verify(session=s)"),
        ("server.events.lifetime", "from server.events.memory import InProcessEventBus"),
        ("dicom_tools.frames", "import pydicom"),
    ],
)
def test_an_allowed_import_is_not_reported(name: str, source: str) -> None:
    assert violations(_module(name, source), FEATURES) == []
