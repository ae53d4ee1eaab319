"""The shape of `drs` (docs/architecture.md#module-map): subpackages by concern, layered, small modules, typed results."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from tools import module_map

ROOT = Path(__file__).resolve().parent.parent
FOUND = module_map.modules()
CODE = [m for m in FOUND if not module_map.is_package(m)]
# Free-form JSON (what comes from outside, a stored blob being parsed) is the only place these belong.
UNTYPED = re.compile(r"\b(?:dict|Mapping|MutableMapping)\[str, Any\]")
MOST_UNTYPED = 80


def test_at_most_twelve_modules_directly_in_drs() -> None:
    direct = sorted(p.name for p in (ROOT / "drs").glob("*.py"))
    assert len(direct) <= 12, direct


def test_no_module_is_over_450_lines() -> None:
    over = {m.name: m.lines for m in CODE if m.lines > 450}
    assert over == {}


def test_every_package_init_is_empty_so_importing_a_subpackage_costs_nothing() -> None:
    """No statement in any `__init__.py` (drs's own holds a docstring only)."""
    inits = sorted((ROOT / "drs").rglob("__init__.py"))
    assert len(inits) == len(module_map.LAYERS)  # drs itself and one per concern
    code = {p.relative_to(ROOT).as_posix(): ast.dump(s) for p in inits for s in ast.parse(p.read_text()).body if not is_docstring(s)}
    assert code == {}


def is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)


def test_every_module_sits_in_a_known_layer_and_says_what_it_is_for() -> None:
    assert {m.name: m.layer for m in CODE if m.layer not in module_map.LAYERS} == {}
    assert [m.name for m in CODE if not m.summary] == []


def test_nothing_imports_a_higher_layer() -> None:
    assert module_map.upward_imports(FOUND) == []


def test_the_import_graph_has_no_cycles() -> None:
    assert module_map.cycles(FOUND) == []


def test_the_checks_see_a_violation() -> None:
    """The two rules above would fail on a real upward import and a real cycle (they are not vacuous)."""
    by_name = {m.name: m for m in CODE}
    low, high = by_name["drs.core.layout"], by_name["drs.pipeline.run"]
    bent = [m for m in FOUND if m.name != low.name] + [
        module_map.Module(low.name, low.path, low.lines, low.summary, low.imports | {high.name})
    ]
    assert module_map.upward_imports(bent) == [f"{low.name} (core) imports {high.name} (pipeline)"]
    assert any(loop[0] == loop[-1] and high.name in loop for loop in module_map.cycles(bent))


def test_untyped_dicts_are_few() -> None:
    """At most 80 `dict[str, Any]` (or `Mapping[str, Any]`) in drs/, and no alias that would hide one."""
    count = {m.name: len(UNTYPED.findall(m.path.read_text())) for m in CODE}
    aliases = [m.name for m in CODE if re.search(r"^\w+\s*(?::\s*TypeAlias\s*)?=\s*(?:dict|Mapping)\[str, Any\]", m.path.read_text(), re.M)]
    assert aliases == []
    assert sum(count.values()) <= MOST_UNTYPED, sorted(((n, c) for n, c in count.items() if c), key=lambda x: -x[1])


def test_the_module_map_in_the_docs_is_what_the_code_says() -> None:
    done = subprocess.run([sys.executable, "-m", "tools.module_map", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_module_path_the_docs_name_exists() -> None:
    """A path like `drs/web/api.py` or `tests/test_x.py` in README, docs/ or bench/README.md names a file that is there."""
    docs = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = re.compile(r"(?<![\w./-])((?:drs|tests|tools|bench)/[\w/]+\.py)\b")
    gone = {f"{doc.name}: {path}" for doc in docs for path in named.findall(doc.read_text()) if not (ROOT / path).exists()}
    assert sorted(gone) == []
