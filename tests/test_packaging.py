"""Every third-party module the server imports is a declared runtime dependency."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Installed with a declared dependency and part of its public interface.
VIA = {"multidict": "aiohttp", "pydantic_core": "pydantic"}


def _top_level_imports(package: Path) -> set[str]:
    names: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_runtime_imports_are_declared_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        _normalise(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0]) for d in project["dependencies"]
    }
    distributions = importlib.metadata.packages_distributions()
    imported = _top_level_imports(ROOT / "server") | _top_level_imports(ROOT / "dicom_tools")
    third_party = sorted(
        name
        for name in imported
        - set(sys.stdlib_module_names)
        - {"server", "dicom_tools", "__future__"}
    )
    undeclared = []
    for module in third_party:
        owners = {_normalise(d) for d in distributions.get(module, [module])}
        if not owners & declared and _normalise(VIA.get(module, module)) not in declared:
            undeclared.append(f"{module} (from {', '.join(sorted(owners))})")
    assert "pydicom" in third_party
    assert undeclared == []
