"""Imports inside kmc.dynamics point one way (no module imports one that imports it back,
directly or through others), counting imports made inside functions too."""
import ast
import pathlib

import kmc

ROOT = pathlib.Path(kmc.__file__).parent


def _module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path, modules):
    """Modules of ``modules`` that the file at ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found.update(n for n in names if n in modules)
    return found


def _cycle(graph):
    """One import cycle of ``graph`` as a list of modules, or None."""
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return path[path.index(n):] + [n]
            if n not in state:
                found = visit(n, path + [n])
                if found:
                    return found
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m, [m])
            if found:
                return found
    return None


def test_cycle_finder_finds_a_loop():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_loop_in_dynamics():
    files = sorted((ROOT / "dynamics").glob("*.py"))
    modules = {_module_name(f): f for f in files}
    # the package face imports the driver only to hand names on; its modules never import it
    graph = {m: _imports(f, modules) - {"kmc.dynamics"} for m, f in modules.items()
             if m != "kmc.dynamics"}
    assert _cycle(graph) is None, _cycle(graph)
    assert "kmc.dynamics.reference" in graph["kmc.dynamics.tls_engine"]  # the walk sees imports
