"""The import graph: layers that never import upwards, a pure compare package, a light config,
and no module reaching into another's private names. Read from the source with ``ast``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "replay"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # name, module prefixes; lowest first. A module imports its own layer and the ones below.
    ("core", ("replay", "replay.types", "replay.errors", "replay.fastjson", "replay.yamlfile",
              "replay.owners", "replay.secrets", "replay.wire", "replay.toolcalls", "replay.privacy")),  # fmt: skip
    ("readers", ("replay.readers", "replay.sampling", "replay.conversations")),
    # The runner writes what it gets into the store, so the store sits below it (and imports
    # nothing of it); everything later reads the store.
    ("store", ("replay.store",)),
    ("providers/runner", ("replay.providers", "replay.config", "replay.arm", "replay.pipeline", "replay.runner", "replay.transforms", "replay.resume", "replay.retry",
                          "replay.ratelimit", "replay.tokens", "replay.pricing", "replay.mockserver")),  # fmt: skip
    ("compare", ("replay.compare", "replay.embeddings")),
    ("judge", ("replay.judge",)),
    ("metrics/stats", ("replay.metrics", "replay.stats", "replay.session_metrics")),
    # What drives the pure packages over a stored run: processes, threads, the store.
    ("stages", ("replay.stages",)),
    ("gates", ("replay.gates", "replay.settings", "replay.scenario_file", "replay.evaluate", "replay.plan")),
    ("reports", ("replay.reports", "replay.review", "replay.export", "replay.progress", "replay.analysis")),
    ("cli", ("replay.cli", "replay.__main__")),
)
PURE = {
    "replay.compare": ("replay.store", "replay.stages", "concurrent.futures", "multiprocessing", "sqlite3"),
    "replay.embeddings": ("replay.store", "replay.stages", "replay.providers", "asyncio", "sqlite3"),
    "replay.judge": ("replay.store", "replay.stages", "replay.arm", "replay.providers", "asyncio", "sqlite3"),
}
"""Packages that compute and nothing else, and what they must never import."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer whose longest prefix names the module (``replay`` itself names only the package's ``__init__``)."""
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module.startswith(prefix + ".") and prefix != "replay"
            if (module == prefix or inside) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best


def imports_of(module: str) -> list[tuple[str, int, list[str]]]:
    """Every import (also inside functions) as (module imported, line, names taken from it)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.append((base, node.lineno, [alias.name for alias in node.names]))
    return found


def replay_target(imported: str, names: list[str]) -> list[str]:
    """The replay modules an import statement loads (``from replay.x import y`` may load ``replay.x.y``)."""
    if imported != "replay" and not imported.startswith("replay."):
        return []
    return [f"{imported}.{name}" if f"{imported}.{name}" in MODULES else imported for name in names or [""]]


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


def upward_imports(module: str) -> list[str]:
    own = layer_of(module)
    found = []
    for imported, line, names in imports_of(module):
        for target in replay_target(imported, names):
            if layer_of(target) > own:
                found.append(f"{module}:{line} ({LAYERS[own][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    return found


def forbidden_imports(package: str) -> list[str]:
    found = []
    for module in MODULES:
        if module != package and not module.startswith(package + "."):
            continue
        for imported, line, names in imports_of(module):
            for target in [imported, *replay_target(imported, names)]:
                if any(target == bad or target.startswith(bad + ".") for bad in PURE[package]):
                    found.append(f"{module}:{line} imports {target}")
    return found


def test_imports_never_run_back_up():
    assert [use for module in MODULES for use in upward_imports(module)] == []


@pytest.mark.parametrize("package", sorted(PURE))
def test_pure_packages_import_no_store_and_no_processes(package):
    assert forbidden_imports(package) == []


def fake_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, extra: str) -> None:
    """Stand in for ``module`` a copy of it with ``extra`` source appended."""
    real = MODULES[module]
    fake = tmp_path / real.relative_to(PACKAGE.parent)
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(real.read_text(encoding="utf-8") + extra, encoding="utf-8")
    monkeypatch.setitem(MODULES, module, fake)


def unlined(found: str) -> str:
    """A finding without its line number: ``replay.x:12 imports y`` -> ``replay.x imports y``."""
    where, _, what = found.partition(" ")
    return f"{where.partition(':')[0]} {what}"


def test_the_checks_see_what_they_forbid(tmp_path, monkeypatch):
    """The checks above could pass by reading nothing: each must see an import it forbids."""
    fake_module(tmp_path, monkeypatch, "replay.compare.text", (
        "\ndef later():\n    from replay.gates import Gate\n    import concurrent.futures\n"
        "    from replay import store\n"
    ))  # fmt: skip
    with pytest.raises(AssertionError, match="replay.newcomer is in no layer"):
        layer_of("replay.newcomer")
    assert [unlined(use) for use in upward_imports("replay.compare.text")] == [
        "replay.compare.text (compare) imports replay.gates (gates)",
    ]
    assert [unlined(use) for use in forbidden_imports("replay.compare")] == [
        "replay.compare.text imports concurrent.futures",
        "replay.compare.text imports replay.store",
    ]


def test_config_imports_no_numpy():
    """The runner imports the scenario's types: they must not pull in numpy (or the gates)."""
    code = "import sys, replay.config; print(sorted(m for m in ('numpy', 'pandas', 'replay.gates') if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def private_names_defined(tree: ast.AST) -> set[str]:
    """Underscore names a module defines: functions, classes, assignments, attributes it sets."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {name for name in names if name.startswith("_")}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(module: str) -> list[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    own = private_names_defined(tree)
    found = []
    for imported, line, names in imports_of(module):
        if not replay_target(imported, names):
            continue
        if any(is_private(part) for part in imported.split(".")):
            found.append(f"{module}:{line} imports the private module {imported}")
        found += [f"{module}:{line} imports {imported}.{name}" for name in names if is_private(name)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own:
            found.append(f"{module}:{node.lineno} uses .{node.attr}, which it does not define")
    return found


def test_no_module_uses_another_modules_private_names():
    found = [use for module in MODULES for use in private_uses(module)]
    assert found == []


def test_the_private_name_checker_sees_a_private_use(tmp_path, monkeypatch):
    fake_module(tmp_path, monkeypatch, "replay.stages.compare", "\nfrom replay.store import _writable\nx = Store._run_row_of\n")
    uses = private_uses("replay.stages.compare")
    assert [unlined(use) for use in uses] == [
        "replay.stages.compare imports replay.store._writable",
        "replay.stages.compare uses ._run_row_of, which it does not define",
    ]
