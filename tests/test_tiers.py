"""The architecture, enforced: bgmask's three tiers import only what their place allows, and
no module of bgmask imports itself back through others.

Every import statement is parsed, those inside functions included: an import that reaches
numpy from the editor-side tier would pass an import test and fail only inside the editor.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "core" / "bgmask"
STDLIB = set(sys.stdlib_module_names)
ENGINE_THIRD_PARTY = {"numpy", "PIL", "onnxruntime", "platformdirs"}
# What the editors give their plug-ins (GIMP: gi; Krita: krita and its Qt binding).
HOST_APIS = {"gi", "krita", "PyQt5", "PyQt6"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved;
    ``from X import name`` also counts ``X.name``, which may be a module."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base != "__future__":
                found.append((node.lineno, base))
                found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return found


def bgmask_modules() -> dict[str, Path]:
    return {module_name(p, REPO / "core"): p for p in sorted(PACKAGE.rglob("*.py"))}


def top(name: str) -> str:
    return name.split(".")[0]


def violations(files: list[Path], root: Path, allowed_roots: set[str],
               allowed_bgmask: tuple[str, ...]) -> list[str]:
    known = bgmask_modules()
    bad = []
    for path in files:
        for line, name in imports(path, root):
            if top(name) == "bgmask":
                if name in known or any(name == m or name.startswith(m + ".")
                                        for m in known if m != "bgmask"):
                    ok = name.startswith(allowed_bgmask) or name == "bgmask"
                else:
                    continue  # "from .x import Name": the module itself was checked
            else:
                ok = top(name) in allowed_roots
            if not ok:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    return bad


def test_the_editor_side_tier_uses_only_the_standard_library_and_itself():
    files = sorted((PACKAGE / "host").rglob("*.py"))
    assert len(files) >= 10
    assert violations(files, REPO / "core", STDLIB, ("bgmask.host",)) == []


def test_the_engine_uses_its_libraries_and_the_host_tier_never_the_processes():
    files = sorted((PACKAGE / "engine").rglob("*.py"))
    assert violations(files, REPO / "core", STDLIB | ENGINE_THIRD_PARTY,
                      ("bgmask.host", "bgmask.engine")) == []


@pytest.mark.parametrize("folder, own", [
    ("plugin/gimp/bgmask-gimp", {"bgmask_vendor"}),
    ("plugin/krita/bgmask_krita", {"bgmask_krita"}),
    ("installers", {"bgmask_installer"}),
])
def test_plugins_and_the_installer_reach_bgmask_only_through_the_host_tier(folder, own):
    base = REPO / folder
    files = sorted(base.rglob("*.py"))
    assert files
    allowed = STDLIB | own | (HOST_APIS if folder.startswith("plugin") else set())
    assert violations(files, base.parent if folder.startswith("plugin/krita") else base,
                      allowed, ("bgmask.host",)) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    """The parser must catch what an import test cannot: a lazy import of numpy."""
    host = tmp_path / "bgmask" / "host"
    host.mkdir(parents=True)
    (tmp_path / "bgmask" / "__init__.py").write_text("")
    (host / "__init__.py").write_text("")
    sneaky = host / "sneaky.py"
    sneaky.write_text("def f():\n    import numpy\n    from ..engine import pipeline\n")
    found = [name for _, name in imports(sneaky, tmp_path)]
    assert "numpy" in found and "bgmask.engine" in found


def test_no_import_cycles_among_bgmasks_modules():
    known = bgmask_modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for _, imported in imports(path, REPO / "core"):
            # The deepest bgmask module the import names (X.name may be a class, not a module).
            while imported and imported not in known:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_environment_is_read_only_in_the_settings_module():
    """One place names and parses every variable bgmask takes from the environment."""
    readers = []
    for name, path in bgmask_modules().items():
        if name == "bgmask.host.settings":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            reads_os = isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") \
                and isinstance(node.value, ast.Name) and node.value.id == "os"
            names_one = isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith("BGMASK_")
            if reads_os or names_one:
                readers.append(f"{name}:{node.lineno}")
    assert readers == []
