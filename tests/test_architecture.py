"""The package import rules of ARCHITECTURE.md, checked by walking every module's imports."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = {"gateway", "collectors", "forecasting", "crm_bridge", "reports"}
ALLOWED = {
    "collectors": set(),
    "forecasting": set(),
    "crm_bridge": {"forecasting"},
    "reports": {"forecasting", "crm_bridge"},
    "gateway": OURS,
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def test_packages_import_only_what_they_may():
    violations = []
    checked = 0
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            checked += 1
            for imported in _imports(path) - allowed - {package}:
                violations.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert checked > 10
    assert not violations, "\n".join(violations)


def test_rule_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import gateway.config\nfrom crm_bridge import x\nfrom . import y\n")
    assert _imports(bad) == {"gateway", "crm_bridge"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports anywhere in its body (lazy imports inside functions too).

    `from a.b import c` names module `a.b.c` when that is a module, else `a.b`; a package's `__init__` is not
    counted as imported by its own submodules (Python runs it first, but that is nesting, not a cycle).
    """
    return _graph(root, package, lambda tree: (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)))


def _graph(root: Path, package: str,
           imports_of: Callable[[ast.Module], Iterable[ast.Import | ast.ImportFrom]]) -> dict[str, set[str]]:
    """Module -> the modules of `package` named by the import statements `imports_of` picks from its tree."""
    files = {_module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        edges: set[str] = set()
        for node in imports_of(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in files}
                continue
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in files:
                    edges.add(target)
                elif base in files:
                    edges.add(base)
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_collectors_have_no_import_cycle():
    graph = _import_graph(ROOT, "collectors")
    assert len(graph) > 10
    assert any(graph.values()), "the walk found imports at all"
    assert not _cycles(graph), _cycles(graph)


def test_cycle_checker_catches_a_cycle(tmp_path):
    pkg = tmp_path / "plug"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""p."""\n')
    (pkg / "sub" / "__init__.py").write_text("from plug.sub import a\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from . import b\n")  # lazy and relative still count
    (pkg / "sub" / "b.py").write_text("from plug.sub.a import f\n")
    (pkg / "c.py").write_text("import plug.sub.b\n")
    graph = _import_graph(tmp_path, "plug")
    assert graph["plug.sub.a"] == {"plug.sub.b"}
    assert _cycles(graph) == [["plug.sub.a", "plug.sub.b"]]


def _collector_packages(root: Path) -> list[Path]:
    """The plugin packages: folders under collectors/ whose `__init__` defines `PLUGIN`."""
    found = []
    for init in sorted((root / "collectors").glob("*/__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        names = {t.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
                 for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
        if "PLUGIN" in names:
            found.append(init.parent)
    return found


def test_every_collector_package_has_readme_and_sample():
    packages = _collector_packages(ROOT)
    assert {p.name for p in packages} >= {"modbus", "opcua"}
    missing = [f"{p.relative_to(ROOT)}/{f}" for p in packages for f in ("README.md", "sample.toml")
               if not (p / f).is_file()]
    assert not missing, missing


def test_every_module_opens_with_a_docstring():
    missing = []
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if ast.get_docstring(tree) is None:
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, missing


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _load_time_imports(stmts: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is loaded: not those inside functions or under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in stmts:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            found += _load_time_imports(node.orelse)
            if not _is_type_checking(node.test):
                found += _load_time_imports(node.body)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _load_time_imports(block)
        elif isinstance(node, ast.With | ast.ClassDef):
            found += _load_time_imports(node.body)
    return found


def _load_time_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports at load time (see `_load_time_imports`)."""
    return _graph(root, package, lambda tree: _load_time_imports(tree.body))


def test_gateway_has_no_import_cycle_at_load_time():
    graph = _load_time_graph(ROOT, "gateway")
    assert len(graph) > 10
    assert "gateway.runtime" in graph.get("gateway.api.scope", set()), "the walk found imports at all"
    assert not _cycles(graph), _cycles(graph)


def test_load_time_walk_skips_type_checking_and_function_imports(tmp_path):
    pkg = tmp_path / "plug"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""p."""\n')
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nimport plug.b\nif TYPE_CHECKING:\n    import plug.c\n")
    (pkg / "b.py").write_text("def f():\n    import plug.a\n")
    (pkg / "c.py").write_text("try:\n    from plug import a\nexcept ImportError:\n    pass\n")
    graph = _load_time_graph(tmp_path, "plug")
    assert graph == {"plug": set(), "plug.a": {"plug.b"}, "plug.b": set(), "plug.c": {"plug.a"}}
    assert not _cycles(graph)
    (pkg / "b.py").write_text("import plug.c\n")
    assert _cycles(_load_time_graph(tmp_path, "plug")) == [["plug.a", "plug.b", "plug.c"]]


def _is_cli(module: str) -> bool:
    return module == "gateway.cli" or module.startswith(("gateway.cli.", "gateway.cli_"))


def test_no_gateway_module_imports_the_command_line():
    """The command line sits on top: the API, portal and runtime never import it, not even lazily."""
    graph = _import_graph(ROOT, "gateway")
    offenders = sorted(f"{m} imports {t}" for m, targets in graph.items() if not _is_cli(m)
                       for t in targets if _is_cli(t))
    assert not offenders, offenders
