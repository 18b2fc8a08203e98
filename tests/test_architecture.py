"""The shape of the code: imports point down the data path (the import-linter contracts in
pyproject.toml), and every function is short enough to hold in mind."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("streams", "llm_sim", "devstack")
MAX_FUNCTION_LINES = 80


def test_the_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long, long


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "streams").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _declared(path: Path) -> set[str] | None:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "__all__":
            assert isinstance(value, ast.List | ast.Tuple)
            return {str(e.value) for e in value.elts if isinstance(e, ast.Constant)}
    return None


def test_every_module_declares_its_public_names_and_no_one_reaches_past_them() -> None:
    """``__all__`` is a module's surface: a name another module imports must be in it (what is
    not is the module's own business and may change freely)."""
    modules = _modules()
    surfaces = {name: _declared(path) for name, path in modules.items()}
    assert [name for name, names in surfaces.items() if names is None] == []
    reached = []
    for package in ("streams", "tests", "bench", "devstack"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or node.module not in surfaces:
                    continue
                surface = surfaces[node.module] or set()
                for alias in node.names:
                    name = alias.name
                    if name not in surface and f"{node.module}.{name}" not in modules:
                        reached.append(f"{path.relative_to(ROOT)}: {node.module}.{name}")
    assert reached == []


def test_nothing_outside_routing_holds_a_gate() -> None:
    """The router answers questions (``over_budget``, ``enabled``, ``request_for``,
    ``status``); how a gate works stays inside ``routing``, and so do its tests."""
    reaching = []
    for root in (ROOT / "streams", ROOT / "tests", ROOT / "bench"):
        for path in root.rglob("*.py"):
            if "routing" in path.relative_to(ROOT).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr.lstrip("_") == "gates":
                    reaching.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert not reaching, reaching
