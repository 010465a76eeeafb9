"""tether's layers, checked on the source: no import runs upward or in a circle, and the CLI
imports no daemon module (docs/internals.md, "Layers").

Every module under src/tether is parsed, not imported; all its imports count, those at module
level and those inside functions (a lazy import still runs, only later). `from x import y` is an
import of the module x.y when there is one, else of x.
"""
from __future__ import annotations

import ast
from pathlib import Path

import tether

SRC = Path(tether.__file__).parent

# The layer of each package or top-level module, lowest first. A module may import modules of
# its own package and of lower layers; two packages on one layer (network and image, api and
# cli) may not import each other.
LAYERS: dict[str, int] = {
    "tether": 0,  # the package itself: only the version
    "tether.rules": 0,  # the leaf: pure rules, standard library only
    "tether.spec": 1,  # the container's typed spec: pure, over the rules
    "tether.runtime": 2,  # drivers: the runtime (runc, conmon, fds in a root) at their base,
    "tether.state": 2,  # and the atomic JSON records they keep
    "tether.network": 3,  # drivers that may use the runtime
    "tether.image": 3,
    "tether.engine": 4,  # services over the drivers
    "tether.api": 5,  # the daemon's HTTP layer over the services
    "tether.cli": 5,  # the client: HTTP only
    "tether.daemon": 6,  # tetherd's main: wires everything
}
# What the CLI may load, its modules' imports followed to the end: nothing of the daemon.
CLI_MAY_LOAD = ("tether.cli", "tether.rules")


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module's dotted name, with its file and whether it is a package's __init__."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


def imports_of(name: str) -> set[str]:
    """The tether modules `name` imports, anywhere in its file."""
    path, is_package = MODULES[name]
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in MODULES else source)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def owner(name: str) -> str:
    """The LAYERS entry a module belongs to: its longest listed prefix (`tether` itself stands
    for its __init__ only, so a new top-level module must be given its layer)."""
    candidates = [key for key in LAYERS
                  if name == key or (key != "tether" and name.startswith(key + "."))]
    assert candidates, f"{name} is in no layer: add its package to LAYERS"
    return max(candidates, key=len)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that run upward, or sideways into another package of the same layer."""
    bad = []
    for name, targets in sorted(graph.items()):
        mine = owner(name)
        for target in sorted(targets):
            theirs = owner(target)
            if theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                bad.append(f"{name} ({mine}, layer {LAYERS[mine]}) imports {target} "
                           f"({theirs}, layer {LAYERS[theirs]})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each group of modules that import each other (Tarjan's strongly
    connected components), as `a -> b -> ... -> a`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle(graph, group) for group in groups]


def _circle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no circle in {sorted(group)}")


def loaded_by(name: str) -> set[str]:
    """Every module importing `name` loads, imports followed, with the packages' __init__
    modules that Python runs on the way (importing a.b.c runs a and a.b first)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(GRAPH[current])
    return seen


def test_every_module_is_in_a_layer() -> None:
    for name in MODULES:
        owner(name)


def test_no_import_runs_upward_or_sideways() -> None:
    assert layer_violations(GRAPH) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert [" -> ".join(circle) for circle in cycles(GRAPH)] == []


def test_the_cli_loads_only_the_rules_and_itself() -> None:
    allowed = {"tether"}
    bad = {}
    for name in MODULES:
        if owner(name) == "tether.cli":
            outside = {m for m in loaded_by(name) - allowed
                       if not any(m == p or m.startswith(p + ".") for p in CLI_MAY_LOAD)}
            if outside:
                bad[name] = sorted(outside)
    assert bad == {}


def test_cli_command_modules_share_helpers_only_through_common() -> None:
    # docs/internals.md, "Layers": a command module imports neither another one nor `main`
    commands = {name for name in MODULES if name.startswith("tether.cli.commands_")}
    assert commands
    bad = {name: sorted(GRAPH[name] & (commands | {"tether.cli.main"})) for name in commands}
    assert {name: found for name, found in bad.items() if found} == {}


def test_the_rules_import_only_the_standard_library_and_themselves() -> None:
    for name, (path, _) in MODULES.items():
        if owner(name) != "tether.rules":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level:
                roots = [node.module or ""]
            elif isinstance(node, ast.Import):
                roots = [alias.name for alias in node.names]
            else:
                continue
            for root in roots:
                top = root.split(".")[0]
                assert root == "tether.rules" or root.startswith("tether.rules.") or (
                    top != "tether" and top in _stdlib()), f"{name} imports {root}"


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names) | {"__future__"}


def test_the_checks_catch_what_they_are_for() -> None:
    # the checkers themselves, on made-up graphs: an upward import, a circle
    assert layer_violations({"tether.image.x": {"tether.engine.y"}, "tether.engine.y": set()})
    assert layer_violations({"tether.cli.x": {"tether.api.y"}, "tether.api.y": set()})
    assert not layer_violations({"tether.engine.y": {"tether.image.x"}, "tether.image.x": set()})
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
