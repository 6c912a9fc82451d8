"""The architecture the folders show (docs/architecture.md), checked on the source itself.

Layers, lowest first: config -> serving -> platform_constructs | k8s_charts -> stacks -> app.py.
A module imports only from its own layer or below; tools/ (the user's CLIs) and scripts/ (developer
scripts) sit on top and nothing imports them. Imports inside functions count too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"tests", "node_modules", "cdk.out", "dist", ".git", ".cache", "__pycache__"}
# What each top-level package may import from the project (besides itself).
ALLOWED = {
    "config": set(),
    "serving": {"config"},
    "platform_constructs": {"config", "serving"},
    "k8s_charts": {"config", "serving"},
    "stacks": {"config", "serving", "platform_constructs", "k8s_charts"},
    "app": {"config", "serving", "platform_constructs", "k8s_charts", "stacks"},
    "tools": {"config", "serving"},
    "scripts": {"config", "serving", "platform_constructs", "k8s_charts", "stacks", "app", "tools"},
}
PROJECT = set(ALLOWED)


def project_modules(root: Path = REPO) -> list[Path]:
    return sorted(p for p in root.rglob("*.py")
                  if not ({part for part in p.relative_to(root).parts[:-1]} & SKIP_DIRS)
                  and not any(part.startswith(".venv") for part in p.relative_to(root).parts))


def imported_packages(path: Path, root: Path = REPO) -> list[tuple[int, str, str]]:
    """(line, imported module, its top-level package) for every project import in `path`."""
    rel = path.relative_to(root)
    package = list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package[:len(package) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
        else:
            continue
        out += [(node.lineno, n, n.split(".")[0]) for n in names if n.split(".")[0] in PROJECT]
    return out


def layer_of(path: Path, root: Path = REPO) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def upward_imports(root: Path = REPO) -> list[str]:
    bad = []
    for path in project_modules(root):
        layer = layer_of(path, root)
        if layer not in ALLOWED:
            bad.append(f"{path.relative_to(root)}: top-level module {layer!r} has no layer in ALLOWED")
            continue
        for line, module, pkg in imported_packages(path, root):
            if pkg != layer and pkg not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(root)}:{line} ({layer}) imports {module} ({pkg})")
    return bad


def test_no_import_runs_upward():
    assert upward_imports() == []


def test_no_chart_imports_another_chart():
    """Charts are siblings: what two charts share lives below them (k8s_charts/objects.py, config)."""
    bad = [f"{p.relative_to(REPO)}:{line} imports {module}"
           for p in (REPO / "k8s_charts").glob("*_chart.py")
           for line, module, _ in imported_packages(p) if re.fullmatch(r"k8s_charts\.\w+_chart", module)]
    assert bad == []


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule itself can fail: a config module importing a stack, and a lazy import in a function."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bad.py").write_text("from stacks import network_stack\n")
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "lazy.py").write_text("def f():\n    import tools.client\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "ok.py").write_text("from . import other\nfrom config import names\n")
    assert upward_imports(tmp_path) == ["config/bad.py:1 (config) imports stacks (stacks)",
                                        "serving/lazy.py:2 (serving) imports tools.client (tools)"]


DOC = REPO / "docs" / "architecture.md"
_PATH = re.compile(r"(?<![\w./<-])((?:[a-z_0-9]+/)+(?:[a-z_0-9]+\.py)?|[a-z_0-9]+\.py)(?![\w-])")


def named_paths(text: str) -> set[str]:
    """Folders (`stacks/`, `platform_constructs/cleanup/`) and modules (`config/presets.py`, or a bare
    `network_stack.py` inside a folder's box) that a page names."""
    return set(_PATH.findall(text))


def missing_paths(text: str, root: Path = REPO) -> list[str]:
    modules = {p.name for p in project_modules(root)}
    folders = {f"{p.parent.name}/" for p in project_modules(root)}

    def exists(name: str) -> bool:
        if name.count("/") > 1 or (name.count("/") == 1 and not name.endswith("/")):
            return (root / name).exists()  # a path from the repository root
        return (root / name).exists() or name in (folders if name.endswith("/") else modules)  # inside a box
    return sorted(p for p in named_paths(text) if not exists(p))


def test_architecture_doc_names_only_modules_that_exist():
    names = named_paths(DOC.read_text())
    assert {"config/worker_shape.py", "objects.py", "stacks/", "network_stack.py"} <= names
    assert missing_paths(DOC.read_text()) == []


def test_the_doc_check_sees_a_stale_name():
    assert missing_paths("see `config/no_such_module.py`, `gone/` and old_stack.py") == [
        "config/no_such_module.py", "gone/", "old_stack.py"]
