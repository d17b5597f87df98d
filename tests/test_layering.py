"""The package's layers: every import runs downward, and heavy libraries load late.

Data flow one way: engine -> report -> writers (saved workbooks, then live Excel,
which reuses the saved-workbook table finder) -> the run pipeline -> the fronts.
A module may import its own layer and the layers below it, never one above;
this test reads every module's imports (function-level and TYPE_CHECKING ones
included) so that the rule cannot erode unnoticed.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from conftest import REPO

LAYERS = {
    "xlseg.errors": 0,
    "xlseg.settings": 0,
    "xlseg.workbook_templates": 0,
    "xlseg.engine": 1,
    "xlseg.spark": 1,
    "xlseg.report": 2,
    "xlseg.workbook": 3,
    "xlseg.files": 3,
    "xlseg.excel": 4,
    "xlseg.run": 5,
    "xlseg.cli": 6,
    "xlseg.ribbon": 6,
    "xlseg.analysis": 6,
    "xlseg.__main__": 6,
    "xlseg": 6,
    "xlseg_udfs": 6,
}
"""Rank of each package or top-level module; a module imports only ranks <= its own."""

HEAVY = (
    "numba",
    "matplotlib",
    "kneed",
    "sklearn",
    "scipy.signal",
    "scipy.stats",
    "openpyxl",
)
"""Libraries that cost a large part of a second or more to import."""


def _module_name(path) -> str:
    relative = path.relative_to(REPO / "udfs" if path.parent.name == "udfs" else REPO)
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int | None:
    """The rank of ``module``: that of its longest listed prefix."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        rank = LAYERS.get(".".join(parts[:end]))
        if rank is not None:
            return rank
    return None


def _imports(path, module: str) -> list[str]:
    """Every xlseg module ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in found if name.split(".")[0] in ("xlseg", "xlseg_udfs")]


def _modules():
    paths = [*(REPO / "xlseg").rglob("*.py"), *(REPO / "udfs").glob("*.py")]
    return sorted(p for p in paths if "__pycache__" not in p.parts)


def test_every_module_has_a_layer():
    assert [_module_name(p) for p in _modules() if _layer(_module_name(p)) is None] == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_import_runs_upward(path):
    module = _module_name(path)
    own = _layer(module)
    upward = [
        name
        for name in _imports(path, module)
        if (rank := _layer(name)) is not None and rank > own and name != "xlseg"
    ]
    assert upward == [], f"{module} (layer {own}) imports from a higher layer"


def test_the_rule_catches_an_upward_import(tmp_path):
    # The check itself: a made-up engine module importing the report is caught.
    engine = tmp_path / "engine_module.py"
    engine.write_text("from xlseg.report.build import build_report\n")
    names = _imports(engine, "xlseg.engine.engine_module")
    assert [n for n in names if _layer(n) > _layer("xlseg.engine.x")] != []


def test_subpackages_say_what_they_hold_and_may_import():
    for init in sorted((REPO / "xlseg").rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring.splitlines()) >= 2, init


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_command_starts_without_the_scientific_stack():
    loaded = _loaded_after("import xlseg.cli")
    assert not {"numpy", "pandas", "pyarrow", "scipy", "sklearn", *HEAVY} & loaded


def test_importing_every_layer_leaves_heavy_libraries_for_their_first_use():
    loaded = _loaded_after(
        "import xlseg.engine.segmentation, xlseg.report.build, xlseg.run.workbook_run,"
        " xlseg.excel.live_writer, xlseg.excel.live_tables"
    )
    assert {name for name in HEAVY if name in loaded} == set()


def test_every_subpackage_is_installed():
    # pyproject lists the packages by hand (udfs/ and workbook_templates/ are mapped),
    # so a new subpackage missing from the list would be left out of a non-editable install.
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {_module_name(init) for init in (REPO / "xlseg").rglob("__init__.py")} | {
        "xlseg.workbook_templates"
    }
    assert found == listed
