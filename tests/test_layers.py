"""Layering rules of docs/architecture.md, checked on the source: the engine (``kmc``) never
imports the analysis, and the modules of ``kmc`` import each other without a loop."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KMC = ROOT / "kmc"


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path, module_level_only):
    """Absolute names of the modules ``path`` imports (relative imports resolved).

    ``from a.b import c`` counts as importing ``a.b.c`` if that is a module of the tree,
    else ``a.b``. With ``module_level_only``, imports inside functions and classes (run
    later, when every module exists) are skipped; ``if``/``try`` blocks at module level
    count.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    nodes = []

    def visit(node, top):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and (top or not module_level_only):
                nodes.append(child)
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                       ast.Lambda))
            visit(child, top and not inner)

    visit(tree, True)
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package[:len(package) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            full = f"{base}.{alias.name}"
            out.add(full if _is_module(full) else base)
    return out


def _is_module(name):
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def kmc_modules():
    return sorted(KMC.rglob("*.py"))


def test_parser_sees_imports_inside_functions(tmp_path):
    """The check below can fail: a function-level import of analysis is found."""
    probe = KMC / "_probe_for_test_layers.py"
    probe.write_text("def f():\n    from analysis import figures\n    import analysis.rates\n")
    try:
        assert imports(probe, module_level_only=False) == {"analysis.figures", "analysis.rates"}
        assert imports(probe, module_level_only=True) == set()
    finally:
        probe.unlink()


def test_kmc_never_imports_analysis():
    offenders = {module_name(p): sorted(n for n in imports(p, module_level_only=False)
                                        if n == "analysis" or n.startswith("analysis."))
                 for p in kmc_modules()}
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"kmc modules importing analysis: {offenders}"


def find_cycle(graph):
    """A list of nodes forming a cycle of ``graph`` (dict node -> set of nodes), or None."""
    state, stack = {}, []

    def dfs(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_among_kmc_modules():
    """Module-level imports between kmc modules form no loop. An explicit import of a
    package (``from kmc import __version__``) is an edge to its ``__init__``; the implicit
    import of the parent packages that Python does first is not (it holds for every
    module and says nothing about the order the modules need)."""
    names = {module_name(p) for p in kmc_modules()}
    graph = {module_name(p): {n for n in imports(p, module_level_only=True) if n in names}
             for p in kmc_modules()}
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"
