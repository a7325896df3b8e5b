"""The convnet package imports in one direction only: every module imports, and the graph of
imports between its modules (read from the source, including imports inside functions, which
could otherwise hide a cycle) has no cycle."""

import ast
import importlib
import pathlib
import types

import pytest

import convnet

PACKAGE = pathlib.Path(convnet.__file__).resolve().parent


def module_names():
    """Every Python module of the package by dotted name -> its source file."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def is_module(name, modules):
    """A module of the package: one of its source files, or a compiled one (convnet._core)."""
    if name in modules:
        return True
    parent, _, attribute = name.rpartition(".")
    return parent in modules and isinstance(
        getattr(importlib.import_module(parent), attribute, None), types.ModuleType)


def imported_modules(name, path, modules):
    """The package's modules that module `name` imports, anywhere in its source: what each
    import statement names, and the packages above it that importing it runs first."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[:len(base) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if is_module(submodule, modules) else source)
    # The packages this module is in are imported before it, so importing them again (or a module
    # under them) runs nothing new; any other package is run on the way to its module.
    own_packages = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
    found = set()
    for target in targets:
        if target.split(".")[0] != PACKAGE.name:
            continue
        found.add(target)
        parts = target.split(".")
        found.update(".".join(parts[:k]) for k in range(1, len(parts))
                     if ".".join(parts[:k]) not in own_packages)
    found.discard(name)
    return found


def import_graph():
    modules = module_names()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph):
    """One import cycle as a list of module names (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "convnet.net" in graph and "convnet.cuda_convnet_checkpoint" in graph["convnet.net"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_checkpoint_importer_does_not_import_the_net():
    graph = import_graph()
    assert "convnet.net" not in graph["convnet.cuda_convnet_checkpoint"]
    assert "convnet.net" in graph["convnet.trainer"]   # the reader sees top-level imports


@pytest.mark.parametrize("name", sorted(n for n in module_names() if not n.endswith("__main__")))
def test_every_module_imports(name):
    importlib.import_module(name)
