"""The layer rules of ARCHITECTURE.md, checked on the source: imports go down, files are touched only where
the table allows, every module has a layer.

The layer table is read from ARCHITECTURE.md itself, so the document and the test cannot disagree. Each
module of ``src/perceptiq`` is parsed with :mod:`ast` (nothing is imported). A violation is a pair
``(module, what)``, e.g. ``("ranking/mad.py", "imports perceptiq.metrics.base (layer 3)")``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "perceptiq"

# Justified exceptions to the file I/O column: (module, call).
IO_ALLOWED: set[tuple[str, str]] = {
    # NIQE/BRISQUE parameters ship inside the package and are read through importlib.resources; the
    # bytes are parsed from memory. Package data, never a user's file.
    ("metrics/nr.py", "file I/O: .read_bytes"),
    ("metrics/nr.py", "file I/O: np.load"),
    # An open_clip backbone folder is open_clip's own format: open_clip reads its weights, perceptiq only
    # reads the architecture of open_clip_config.json beside them to record it in the model config.
    ("models/_image_text.py", "file I/O: .read_text"),
}

# Calls that touch files. Attribute calls on any object (Path, DataFrame, PIL image, os, open files):
IO_METHODS = {
    "open", "read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "glob", "rglob", "mkdir",
    "unlink", "touch", "to_csv", "to_parquet", "to_json", "to_pickle", "to_excel", "save", "walk",
    "scandir", "listdir", "load_file", "save_file", "safe_open", "imread", "imwrite",
}  # fmt: skip
# Attribute calls that touch files only on these modules (``np.load``, ``torch.save``, ``pd.read_csv``):
IO_MODULE_CALLS = {
    "np": {"load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt", "fromfile"},
    "torch": {"load", "save"},
    "pickle": {"load", "dump"},
    "shutil": {"copy", "copy2", "copyfile", "copytree", "move", "rmtree"},
}
IO_MODULE_CALLS["numpy"] = IO_MODULE_CALLS["np"]
# ... and calls by prefix: pd.read_*, imageio/cv2 im*, anything of tifffile.
IO_MODULE_PREFIXES = {
    "pd": "read_", "pandas": "read_", "iio": "im", "imageio": "im", "cv2": "im", "tifffile": "",
}  # fmt: skip
# Bare-name calls (``from safetensors.torch import load_file``):
IO_NAMES = {"open", "load_file", "save_file", "safe_open", "imread", "imwrite"}


@dataclass(frozen=True)
class Row:
    layer: int
    name: str
    io: bool


@dataclass
class Table:
    modules: dict[str, Row]  # dotted module name -> row (entries ``x.py``)
    packages: dict[str, Row]  # dotted package name -> row (entries ``x/``: the package and all below)
    entries: dict[str, str]  # dotted name -> the entry as written (for messages)

    def row(self, module: str) -> Row | None:
        """The row of a dotted module name: its own entry, else the innermost package entry above it."""
        if module in self.modules:
            return self.modules[module]
        parts = module.split(".")
        for n in range(len(parts), 0, -1):
            if ".".join(parts[:n]) in self.packages:
                return self.packages[".".join(parts[:n])]
        return None


def _expand(entry: str) -> list[str]:
    """``a/{x,y}.py`` -> ``a/x.py``, ``a/y.py``."""
    m = re.fullmatch(r"(.*)\{(.*)\}(.*)", entry)
    return [m[1] + part.strip() + m[3] for part in m[2].split(",")] if m else [entry]


def _dotted(entry: str) -> str:
    parts = [p for p in entry.rstrip("/").removesuffix(".py").split("/") if p not in ("", "__init__")]
    return ".".join([PACKAGE, *parts])


def parse_table(text: str) -> Table:
    """The layer table of ARCHITECTURE.md: rows ``| layer | name | file I/O | modules | what |``."""
    table = Table({}, {}, {})
    rows = [line for line in text.splitlines() if re.match(r"\|\s*\d+\s*\|", line)]
    assert rows, "ARCHITECTURE.md has no layer table"
    for line in rows:
        layer, name, io, modules = (cell.strip() for cell in line.strip().strip("|").split("|")[:4])
        assert io in ("yes", "no"), f"file I/O column must be yes or no: {line}"
        row = Row(int(layer), name, io == "yes")
        for written in re.findall(r"`([^`]+)`", modules):
            for entry in _expand(written):
                dotted = _dotted(entry)
                assert dotted not in table.entries, f"{entry} is in the table twice"
                table.entries[dotted] = entry
                target = table.packages if entry.endswith("/") else table.modules
                target[dotted] = row
    return table


def discover(src: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the package under ``src``."""
    found = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (annotations only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The innermost existing module of a dotted ``name`` (``pkg.mod.attr`` -> ``pkg.mod``)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of the package that ``module`` imports anywhere in its code (resolved, relative too)."""
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    resolved = {_resolve(n, known) for n in names if n.split(".")[0] == PACKAGE}
    targets = set()
    for target in resolved - {None}:
        parts = target.split(".")
        for n in range(2, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            ancestor = ".".join(parts[:n])
            if not (module == ancestor or module.startswith(ancestor + ".")):
                targets.add(ancestor)
    return targets


def _io_call(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name) and func.id in IO_NAMES:
        return func.id
    if not isinstance(func, ast.Attribute):
        return None
    owner = func.value.id if isinstance(func.value, ast.Name) else None
    if owner in IO_MODULE_CALLS:
        return f"{owner}.{func.attr}" if func.attr in IO_MODULE_CALLS[owner] else None
    if owner in IO_MODULE_PREFIXES:
        return f"{owner}.{func.attr}" if func.attr.startswith(IO_MODULE_PREFIXES[owner]) else None
    if func.attr == "open" and owner == "Image":
        return "Image.open"
    return f".{func.attr}" if func.attr in IO_METHODS else None


def io_calls_of(path: Path) -> set[str]:
    """The file-touching calls in ``path`` (``"torch.load"``, ``".read_text"``, ``"open"``)."""
    return {
        call
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and (call := _io_call(node.func))
    }


def _label(module: str) -> str:
    path = module.removeprefix(PACKAGE).lstrip(".").replace(".", "/")
    return f"{path}.py" if path else "__init__.py"


def violations(table: Table, src: Path) -> set[tuple[str, str]]:
    """Every breach of the table by the package under ``src``."""
    known = discover(src)
    found: set[tuple[str, str]] = set()
    for dotted, entry in table.entries.items():
        if dotted not in known:
            found.add(("ARCHITECTURE.md", f"{entry} names no module"))
    for module, path in known.items():
        label = path.relative_to(src / PACKAGE).as_posix()
        row = table.row(module)
        if row is None:
            found.add((label, "has no layer in ARCHITECTURE.md"))
            continue
        for target in imports_of(module, path, known):
            other = table.row(target)
            if other is not None and other.layer > row.layer:
                found.add((label, f"imports {target} (layer {other.layer})"))
        if not row.io:
            found.update((label, f"file I/O: {call}") for call in io_calls_of(path))
    return found - IO_ALLOWED


def _table() -> Table:
    return parse_table((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8"))


def test_the_package_follows_the_layer_table():
    found = sorted(violations(_table(), SRC))
    assert not found, "breaches of ARCHITECTURE.md:\n" + "\n".join(f"{m}: {w}" for m, w in found)


def test_allow_list_entries_are_still_needed():
    table, known = _table(), discover(SRC)
    used = {
        (path.relative_to(SRC / PACKAGE).as_posix(), f"file I/O: {call}")
        for module, path in known.items()
        if (row := table.row(module)) is not None and not row.io
        for call in io_calls_of(path)
    }
    assert used >= IO_ALLOWED, sorted(IO_ALLOWED - used)


def test_layers_are_numbered_from_core_to_interface():
    table = _table()
    assert table.row("perceptiq.errors").layer == 0
    assert table.row("perceptiq.cli").layer == max(r.layer for r in table.modules.values())
    assert table.row("perceptiq.io.tables").io
    assert not table.row("perceptiq.functional.fr.ssim").io


def test_readme_points_to_the_architecture():
    assert "ARCHITECTURE.md" in (ROOT / "README.md").read_text(encoding="utf-8")


# The checker itself, on a small package written for the purpose: it must see what it claims to see.

TOY_TABLE = """
| layer | name | file I/O | modules | what |
|---|---|---|---|---|
| 0 | core | no | `__init__.py`, `errors.py` | - |
| 1 | math | no | `math/`, `stats/{__init__,a}.py` | - |
| 2 | io | yes | `io/` | - |
| 3 | app | no | `app.py`, `gone.py` | - |
"""

TOY_FILES = {
    "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from perceptiq import app\n",
    "errors.py": "",
    "math/__init__.py": "",
    "math/ok.py": "from . import helpers\nfrom ..errors import E\n",
    "math/helpers.py": "def f():\n    import perceptiq.io.read as r\n",
    "math/lazy.py": "import importlib\nM = importlib.import_module('perceptiq.app')\n",
    "math/disk.py": "import torch\ndef f(p):\n    return torch.load(p), p.read_text(), open(p)\n",
    "stats/__init__.py": "from perceptiq import app\n",
    "stats/a.py": "",
    "stats/b.py": "",
    "io/__init__.py": "",
    "io/read.py": "import pandas as pd\nfrom perceptiq.stats.a import x\nX = pd.read_csv('t.csv')\n",
    "app.py": "from perceptiq.io.read import X\nimport numpy as np\nnp.load('a.npy')\n",
}


def test_the_checker_finds_each_kind_of_breach(tmp_path):
    for name, text in TOY_FILES.items():
        (tmp_path / PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / PACKAGE / name).write_text(text, encoding="utf-8")
    assert violations(parse_table(TOY_TABLE), tmp_path) == {
        ("ARCHITECTURE.md", "gone.py names no module"),
        ("stats/b.py", "has no layer in ARCHITECTURE.md"),
        ("math/helpers.py", "imports perceptiq.io (layer 2)"),  # inside a function, via the package
        ("math/helpers.py", "imports perceptiq.io.read (layer 2)"),
        ("math/lazy.py", "imports perceptiq.app (layer 3)"),  # importlib.import_module("...")
        ("math/disk.py", "file I/O: torch.load"),
        ("math/disk.py", "file I/O: .read_text"),
        ("math/disk.py", "file I/O: open"),
        ("stats/__init__.py", "imports perceptiq.app (layer 3)"),
        ("app.py", "file I/O: np.load"),
    }  # relative imports resolve (math/ok.py is clean); io/ may read and import below; TYPE_CHECKING is free


def test_table_entries_expand_and_the_innermost_wins():
    table = parse_table(TOY_TABLE)
    assert table.row("perceptiq.stats") == table.row("perceptiq.stats.a") == Row(1, "math", False)
    assert table.row("perceptiq.stats.b") is None
    assert table.row("perceptiq.io.deep.module") == Row(2, "io", True)
    with pytest.raises(AssertionError, match="twice"):
        parse_table(TOY_TABLE + "| 2 | x | no | `math/` | - |\n")
