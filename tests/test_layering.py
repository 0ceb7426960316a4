"""Dependencies flow one way: ``nascell`` <- ``nascell.search`` and ``nascell`` <-
``nascell.export``; the one module that needs both halves is the glue,
``nascell.search.handover``. This walks every module's imports (the AST, so imports inside
functions count) and the module names its strings hand to a lazy import."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
GLUE = "nascell.search.handover"
PACKAGES = {"nascell": "nascell", "search": "nascell.search", "export": "nascell.export"}


def _modules():
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package,) + parts), path


def _imports(path):
    """Every module ``path`` imports (``from a import b`` counts as ``a`` and ``a.b``), and
    every string constant that names a nascell module (lazy imports, registries)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.split(":")[0]
            if text.startswith("nascell.") and " " not in text:
                found.add(text)
    return found


def _within(name, package):
    return name == package or name.startswith(package + ".")


MODULES = dict(_modules())


def test_the_walk_sees_the_package():
    assert GLUE in MODULES and "nascell.export.exporter" in MODULES
    assert "nascell.search.loop" in MODULES and "nascell.kinds" in MODULES
    assert "nascell.export" in _imports(MODULES[GLUE]) | {
        n.rsplit(".", 1)[0] for n in _imports(MODULES[GLUE])}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_dependencies_flow_one_way(module):
    imports = _imports(MODULES[module])
    if _within(module, "nascell.search"):
        if module != GLUE:
            bad = sorted(n for n in imports if _within(n, "nascell.export"))
            assert not bad, f"{module} imports {bad}; only {GLUE} may import nascell.export"
    elif _within(module, "nascell.export"):
        bad = sorted(n for n in imports if _within(n, "nascell.search")
                     and not _within(n, GLUE) and n != "nascell.search")
        assert not bad, f"{module} imports {bad}; the export reaches a search only through {GLUE}"
        plain = [n for n in imports if n == "nascell.search"]
        assert not plain or f"nascell.search.{GLUE.rsplit('.', 1)[1]}" in imports, module
    else:  # nascell/: what users import depends on neither half
        bad = sorted(n for n in imports if _within(n, "nascell.search")
                     or _within(n, "nascell.export"))
        assert not bad, f"{module} imports {bad}; nascell/ must not depend on search or export"


def test_the_glue_is_one_small_module():
    users = sorted(m for m in MODULES if _within(m, "nascell.search") and m != GLUE
                   and any(_within(n, "nascell.export") for n in _imports(MODULES[m])))
    assert users == []
    assert len(MODULES[GLUE].read_text(encoding="utf-8").splitlines()) < 250
