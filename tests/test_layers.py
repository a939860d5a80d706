"""The house rules, checked on the source: layers point down, packages meet through public names, no cycles.

Every product module is parsed with ``ast`` (nothing is imported), and *every* import counts: module level,
inside functions (lazy imports) and under ``if TYPE_CHECKING:``. A lazy or type-only import still ties the
two modules together; the rules are about the design, not about what happens to run.

- Layers, bottom to top: ``core`` < ``memory``, ``prompts`` < ``agent`` < ``eval`` < ``tide``, ``service``,
  ``bench``. A module never imports a package of a higher layer.
- Across packages only public names: ``from agent import X``, never ``from agent._engine import X``.
- No import cycle between modules (``a`` imports ``b`` imports ... ``a``), a package's ``__init__`` included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: top-level package -> layer; a module may import only its own layer's packages or lower ones
LAYERS = {"core": 0, "memory": 1, "prompts": 1, "agent": 2, "eval": 3, "tide": 4, "service": 4, "bench": 4}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute module name."""

    module: str  # the importing module, e.g. "eval._runner"
    target: str  # the imported module, e.g. "eval._data" (or a package: "agent")
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def module_files(root: Path, packages: dict[str, int] = LAYERS) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the product packages present under ``root``."""
    out: dict[str, Path] = {}
    for package in packages:
        if not (root / package / "__init__.py").exists():
            continue
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import in a module's source, wherever it stands (functions and TYPE_CHECKING blocks too).

    ``from X import y`` counts as importing ``X.y`` when that is a module, else ``X``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, is_package, node.level, node.module) if node.level else node.module or ""
            )
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Import(module, sub if sub in known else base, node.lineno)


def all_imports(root: Path, packages: dict[str, int] = LAYERS) -> list[Import]:
    files = module_files(root, packages)
    known = set(files)
    return [imp for module, path in files.items() for imp in imports_of(module, path, known)]


def _top(name: str) -> str:
    return name.split(".")[0]


def private_violations(imports: list[Import], packages: dict[str, int] = LAYERS) -> list[str]:
    """Imports of another package's private module (any dotted part after the package starting with ``_``)."""
    out = []
    for imp in imports:
        top = _top(imp.target)
        if top not in packages or top == _top(imp.module):
            continue
        inner = imp.target.split(".")[1:]
        if any(part.startswith("_") and not part.startswith("__") for part in inner):
            out.append(str(imp))
    return out


def layer_violations(imports: list[Import], packages: dict[str, int] = LAYERS) -> list[str]:
    """Imports of a package on a higher layer than the importing module's package."""
    out = []
    for imp in imports:
        src, dst = _top(imp.module), _top(imp.target)
        if dst in packages and packages[dst] > packages[src]:
            out.append(f"{imp} (layer {packages[src]} -> {packages[dst]})")
    return out


def import_cycles(imports: list[Import], modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module in the import graph (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        if imp.target in modules and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # recursion depth is bounded by the module count (a few hundred)
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


# -- the house --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def house() -> tuple[list[Import], set[str]]:
    files = module_files(ROOT)
    assert {"core", "memory", "prompts", "agent", "eval"} <= set(files), "product packages not found"
    return all_imports(ROOT), set(files)


def test_no_package_imports_another_package_private_module(house) -> None:
    imports, _ = house
    found = private_violations(imports)
    assert not found, "private modules imported across packages:\n" + "\n".join(found)


def test_layers_point_down(house) -> None:
    imports, _ = house
    found = layer_violations(imports)
    assert not found, "imports of a higher layer:\n" + "\n".join(found)


def test_no_import_cycles(house) -> None:
    imports, modules = house
    found = import_cycles(imports, modules)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


# -- the checker itself, on a made-up house (so the tests above can fail) ---------------------------------
def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_each_kind_of_violation(tmp_path) -> None:
    _write(tmp_path, {
        "low/__init__.py": "from low._a import f\n",
        "low/_a.py": ("from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from high import H\n"  # upward, type-only
                      "def f():\n    from . import _b\n"),  # lazy, relative: low._a -> low._b
        "low/_b.py": "from ._a import f\n",  # low._b -> low._a: a cycle with the lazy import above
        "high/__init__.py": "H = 1\n",
        "high/_p.py": "import low\nfrom low._a import f\n",  # a public import, then a private one
    })
    layers = {"low": 0, "high": 1}
    files = module_files(tmp_path, layers)
    assert set(files) == {"low", "low._a", "low._b", "high", "high._p"}
    imports = all_imports(tmp_path, layers)
    assert private_violations(imports, layers) == ["high._p:2 imports low._a"]
    assert layer_violations(imports, layers) == ["low._a:3 imports high (layer 0 -> 1)"]
    assert import_cycles(imports, set(files)) == [["low._a", "low._b"]]


def test_the_checker_passes_a_clean_house(tmp_path) -> None:
    _write(tmp_path, {
        "low/__init__.py": "from low._a import f\n\n__all__ = ['f']\n",
        "low/_a.py": "import numpy as np\n\ndef f():\n    return np.zeros(1)\n",
        "high/__init__.py": "from low import f\nfrom high._x import g\n",
        "high/_x.py": "from low import f\n\ndef g():\n    from ._y import h\n    return h(f())\n",
        "high/_y.py": "def h(x):\n    return x\n",
    })
    layers = {"low": 0, "high": 1}
    imports = all_imports(tmp_path, layers)
    assert private_violations(imports, layers) == []
    assert layer_violations(imports, layers) == []
    assert import_cycles(imports, set(module_files(tmp_path, layers))) == []
