"""The import graph: dependencies flow one way, ``nascell`` <- ``nascell.search`` and
``nascell`` <- ``nascell.export``, with no cycle between the three packages, and exactly one
module where the search meets the export: ``nascell.search.handover.exporting``.

This walks every module's imports (the AST, so imports inside functions count) and the module
names its strings hand to a lazy import (registries, ``importlib``). The one edge allowed the
other way is a deprecation forward: ``nascell.export`` names `nascell.search.handover` in its
``_MOVED`` table (``export_best``, ``load_model``; imported by name on first use, never at
import time), which goes in 0.3.0."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CROSSING = "nascell.search.handover.exporting"
PACKAGES = {"nascell": "nascell", "search": "nascell.search", "export": "nascell.export"}
# module -> the modules it may name in strings only (lazy, deprecated), and the version that
# removes the forward.
DEPRECATED_FORWARDS = {"nascell.export": ({"nascell.search.handover"}, "0.3.0")}


def _modules():
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package,) + parts), path


def _imports(path):
    """``(statements, names)``: the modules ``path``'s import statements import (``from a
    import b`` counts as ``a`` and ``a.b``), and every string constant that names a nascell
    module (lazy imports, registries)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    statements, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            statements.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            statements.add(node.module)
            statements.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.split(":")[0]
            if text.startswith("nascell.") and " " not in text:
                names.add(text)
    return statements, names


def _within(name, package):
    return name == package or name.startswith(package + ".")


def _package(name):
    for package in ("nascell.search", "nascell.export"):
        if _within(name, package):
            return package
    return "nascell" if _within(name, "nascell") else None


MODULES = dict(_modules())
IMPORTS = {module: _imports(path) for module, path in MODULES.items()}


def _edges(module):
    """The nascell modules ``module`` depends on, less its documented deprecation forward."""
    statements, names = IMPORTS[module]
    forwarded = DEPRECATED_FORWARDS.get(module, (set(), None))[0]
    return {n for n in statements | names if _package(n)} - forwarded


def test_the_walk_sees_the_package():
    assert CROSSING in MODULES and "nascell.export.exporter" in MODULES
    assert "nascell.search.core.loop" in MODULES and "nascell.kinds" in MODULES
    assert any(_within(n, "nascell.export") for n in _edges(CROSSING))


def test_no_cycle_between_the_packages():
    graph = {p: set() for p in ("nascell", "nascell.search", "nascell.export")}
    for module in MODULES:
        for name in _edges(module):
            if _package(name) != _package(module):
                graph[_package(module)].add(_package(name))
    assert graph["nascell"] == set(), "nascell/ must not depend on search or export"
    assert graph["nascell.export"] == {"nascell"}, graph
    assert graph["nascell.search"] == {"nascell", "nascell.export"}, graph


def test_exactly_one_module_where_search_meets_export():
    meeting = sorted(m for m in MODULES
                     if any(_package(n) not in (_package(m), "nascell") for n in _edges(m)))
    assert meeting == [CROSSING]


@pytest.mark.parametrize("module", sorted(DEPRECATED_FORWARDS))
def test_the_deprecation_forward_is_lazy_and_named(module):
    statements, names = IMPORTS[module]
    forwarded, version = DEPRECATED_FORWARDS[module]
    assert not any(_within(n, "nascell.search") for n in statements), (
        f"{module} imports the search; it may only name it for a lazy, deprecated forward")
    assert {n for n in names if _within(n, "nascell.search")} <= forwarded
    source = MODULES[module].read_text(encoding="utf-8")
    assert "_MOVED" in source and f'_REMOVED_IN = "{version}"' in source
