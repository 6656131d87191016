"""The layer rule, enforced on the source: an AST walk over every module of almanet/.

Imports are read wherever they are (module level or inside functions: a lazy import is still a
dependency); only ``if TYPE_CHECKING:`` blocks are skipped, since they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "almanet"

# Ranks from /work/shared/design.md: an import may only go to the same rank or lower. A
# subpackage has one rank for all its modules (PACKAGE_RANKS); the NSQ client and the test
# tooling rank module by module (RANKS). The CLI is matched by prefix. A new subpackage or a new
# module of _nsq/testing must be given its layer here.
PACKAGE_RANKS: dict[str, int] = {
    "almanet._wire": 0,  # L0 pure: message shapes, validation, errors, argument rules
    "almanet._settings": 0,  # "beside": settings, pure
    "almanet._contracts": 0,  # "beside": AsyncAPI documents, compatibility, stubs, pure
    "almanet._broker": 3,  # L3 the broker: connections, nsqd /stats
    "almanet._calling": 4,  # L4 the caller's side: session facade, calls, deadlines, consume
    "almanet._serving": 5,  # L5 the serving side: registry, invocations, serve loop
}
RANKS: dict[str, int] = {
    # L0 pure
    "almanet._nsq": 0,  # the package __init__: a docstring
    "almanet._nsq.codec": 0,
    "almanet._nsq.names": 0,
    "almanet._nsq.address": 0,
    "almanet._nsq.backoff": 0,
    "almanet._nsq.options": 0,
    "almanet._nsq.errors": 0,
    # L1 one socket
    "almanet._nsq.connection": 1,
    "almanet._nsq.handshake": 1,
    "almanet._nsq.http": 1,
    "almanet._runner": 1,
    # L2 topology
    "almanet._nsq.producer": 2,
    "almanet._nsq.bulk": 2,
    "almanet._nsq.consumer": 2,
    "almanet._nsq.discovery": 2,
    # the public facade, then the CLI on top of everything
    "almanet": 6,
    # test tooling beside the facade: daemons (no almanet import), then serving on the public API
    "almanet.testing._util": 1,
    "almanet.testing._tools": 1,
    "almanet.testing._processes": 1,
    "almanet.testing._cluster": 1,
    "almanet.testing._serving": 6,
    "almanet.testing.plugin": 6,
    "almanet.testing": 6,
}
CLI_RANK = 7
# at most this many private modules directly in almanet/ besides __init__.py (issue 19)
MAX_FLAT_MODULES = 3

PURE_PACKAGES = ("almanet._wire", "almanet._settings", "almanet._contracts")
PURE_NSQ = {
    "almanet._nsq.codec",
    "almanet._nsq.names",
    "almanet._nsq.address",
    "almanet._nsq.backoff",
    "almanet._nsq.options",
    "almanet._nsq.errors",
}
IMPURE = {"asyncio", "socket", "ssl"}
# options.py uses socket.gethostname() for the default client_id/hostname: a lookup of a local
# name, no I/O on a connection. Tolerated for that module and that module only.
TOLERATED_IMPURE = {("almanet._nsq.options", "socket")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
PURE = PURE_NSQ | {m for m in MODULES if m.startswith(PURE_PACKAGES)}


def rank(module: str) -> int:
    if module == "almanet.cli" or module.startswith("almanet.cli."):
        return CLI_RANK
    for package, package_rank in PACKAGE_RANKS.items():
        if module == package or module.startswith(package + "."):
            return package_rank
    if module not in RANKS:
        raise AssertionError(f"{module} has no layer: add it to RANKS in {Path(__file__).name}")
    return RANKS[module]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def imports_of(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in ``source``; relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in _walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from . import codec` imports the submodule almanet._nsq.codec (parent packages
            # are loaded by any import, so they are no dependency); other names come from base
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            if len(submodules) < len(node.names):
                found.append((node.lineno, base))
            found.extend((node.lineno, target) for target in submodules)
    return found


def graph() -> dict[str, list[tuple[int, str]]]:
    return {
        name: imports_of(name, path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for name, path in MODULES.items()
    }


GRAPH = graph()


def _internal(target: str) -> bool:
    return target == "almanet" or target.startswith("almanet.")


# -- the checker itself ------------------------------------------------------------------------


def test_resolver_on_known_source() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import asyncio.subprocess\n"
        "from . import codec\n"
        "from ..x import y\n"
        "from .. import _wire\n"
        "from .. import rpc_error\n"
        "if TYPE_CHECKING:\n"
        "    import ssl\n"
        "def f():\n"
        "    import socket\n"
    )
    targets = [t for _, t in imports_of("almanet._nsq.fake", source)]
    assert targets == [
        "typing",
        "asyncio.subprocess",
        "almanet._nsq.codec",
        "almanet.x",
        "almanet._wire",
        "almanet",
        "socket",
    ]


def test_every_module_was_found() -> None:
    for expected in ("almanet", "almanet._nsq.codec", "almanet._calling.session", "almanet.cli"):
        assert expected in MODULES
    assert GRAPH["almanet._nsq.connection"], "the walk found no imports at all"


# -- the rules ---------------------------------------------------------------------------------


def test_nsq_client_knows_nothing_of_almanet() -> None:
    bad = [
        f"{module}:{line} imports {target}"
        for module, imports in GRAPH.items()
        if module.startswith("almanet._nsq")
        for line, target in imports
        if _internal(target) and not (target == "almanet._nsq" or target.startswith("almanet._nsq."))
    ]
    assert not bad, "almanet/_nsq must stay a standalone NSQ client:\n" + "\n".join(bad)


def test_pure_modules_do_no_io() -> None:
    bad = [
        f"{module}:{line} imports {target}"
        for module in sorted(PURE & MODULES.keys())
        for line, target in GRAPH[module]
        if target.split(".")[0] in IMPURE and (module, target.split(".")[0]) not in TOLERATED_IMPURE
    ]
    assert not bad, "L0 modules must not import asyncio, socket or ssl:\n" + "\n".join(bad)


def test_the_tolerated_socket_import_is_still_needed() -> None:
    """If options.py stops importing socket, drop the tolerance so it cannot come back silently."""
    for module, lib in TOLERATED_IMPURE:
        assert lib in {t.split(".")[0] for _, t in GRAPH[module]}, f"{module} no longer imports {lib}"


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("almanet._calling.session", "almanet._serving"),
        ("almanet._calling.caller", "almanet._serving"),
        ("almanet._broker.broker", "almanet._calling"),
        ("almanet._wire.protocol", "almanet._calling"),
        ("almanet._serving.service", "almanet.cli"),
    ],
)
def test_lower_layer_does_not_import_higher(module: str, forbidden: str) -> None:
    bad = [(line, t) for line, t in GRAPH[module] if t == forbidden or t.startswith(forbidden + ".")]
    assert not bad, f"{module} imports {forbidden} at lines {[line for line, _ in bad]}"


def test_only_the_cli_imports_the_cli() -> None:
    bad = [
        f"{module}:{line} imports {target}"
        for module, imports in GRAPH.items()
        if rank(module) != CLI_RANK
        for line, target in imports
        if target == "almanet.cli" or target.startswith("almanet.cli.")
    ]
    assert not bad, "\n".join(bad)


def test_no_import_goes_up_a_layer() -> None:
    bad = []
    for module, imports in GRAPH.items():
        for line, target in imports:
            if not _internal(target):
                continue
            if target not in MODULES:
                # `from almanet._errors import config_error` names a module; a bare attribute
                # import from a package resolves to the package itself
                target = target.rpartition(".")[0]
            if rank(target) > rank(module):
                bad.append(f"{module} (L{rank(module)}):{line} imports {target} (L{rank(target)})")
    assert not bad, "imports must go down the layers:\n" + "\n".join(bad)


# -- private attributes and what the NSQ client may say --------------------------------------


def _own_private_names(tree: ast.AST) -> set[str]:
    """The underscore names a module defines itself: its functions, classes, attributes, slots."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__slots__" for t in node.targets):
            names.update(
                e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )
    return {n for n in names if n.startswith("_")}


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def foreign_private_reads(source: str) -> list[tuple[int, str]]:
    """(line, attribute) for each ``x._name`` whose ``_name`` this source does not define itself."""
    tree = ast.parse(source)
    own = _own_private_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        if node.attr in own or _dotted(node) in MODULES:  # `almanet._wire` named as a module
            continue
        found.append((node.lineno, node.attr))
    return found


def test_private_read_checker_on_known_source() -> None:
    source = (
        "class A:\n"
        "    __slots__ = ('_slot',)\n"
        "    def __init__(self, other):\n"
        "        self._mine = 1\n"
        "        other._mine = 2\n"
        "        other._slot\n"
        "        other._theirs\n"
        "        other.__class__\n"
        "    def _helper(self): ...\n"
        "import almanet._wire\n"
        "almanet._wire.new_id\n"
        "A(None)._helper()\n"
    )
    assert foreign_private_reads(source) == [(7, "_theirs")]


def test_no_module_reads_another_modules_private_attributes() -> None:
    """Couplings go through names a module offers (no ``session._subscribe``, ``message._connection``)."""
    bad = [
        f"{module}:{line} reads .{attr}, which it does not define"
        for module, path in MODULES.items()
        for line, attr in foreign_private_reads(path.read_text(encoding="utf-8"))
    ]
    assert not bad, "use a public (or package-public) name instead:\n" + "\n".join(bad)


def test_the_nsq_client_never_mentions_almanet() -> None:
    """Not in code, messages or docs: fixes are worded by whoever configured the client (the Broker)."""
    bad = [
        f"{module}:{number}: {line.strip()}"
        for module, path in MODULES.items()
        if module.startswith("almanet._nsq")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "almanet" in line.lower()
    ]
    assert not bad, "almanet/_nsq must stay a standalone NSQ client:\n" + "\n".join(bad)


# -- the shape of the house: subpackages named after their jobs, no circles ------------------


def _all_imports(module: str, source: str, is_package: bool) -> set[str]:
    """Every almanet module ``source`` imports, ``if TYPE_CHECKING:`` blocks included: a circle
    drawn only for the type checker is still two modules that need each other."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    # a parent package is loaded by any import of its modules: no edge of its own
    return {t for t in found if t in MODULES and not module.startswith(t + ".") and t != module}


def import_circles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    edges = {
        name: sorted(_all_imports(name, path.read_text(encoding="utf-8"), path.name == "__init__.py"))
        for name, path in MODULES.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return circles


def test_circle_finder_on_a_known_graph() -> None:
    assert _all_imports("almanet._serving.service", "from .procedure import Procedure\n", False) == {
        "almanet._serving.procedure"
    }


def test_no_import_circles() -> None:
    circles = import_circles()
    assert not circles, "modules that import each other (give the shared name one owner below both):\n" + "\n".join(
        " <-> ".join(c) for c in circles
    )


def test_private_modules_live_in_subpackages() -> None:
    flat = sorted(p.name for p in ROOT.glob("*.py") if p.name != "__init__.py")
    assert len(flat) <= MAX_FLAT_MODULES, f"flat private modules in almanet/: {flat}"
    packages = sorted(p.parent.name for p in ROOT.glob("_*/__init__.py"))
    assert len(packages) >= 5, packages
    for package in packages:
        assert f"almanet.{package}" in PACKAGE_RANKS or f"almanet.{package}" in RANKS, package


@pytest.mark.parametrize("init", sorted(ROOT.glob("*/__init__.py")), ids=lambda p: p.parent.name)
def test_every_subpackage_says_its_job(init: Path) -> None:
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc, f"{init.relative_to(ROOT.parent)} has no docstring"
    if init.parent.name.startswith("_"):
        assert "May import" in doc, f"{init.relative_to(ROOT.parent)} does not say what it may import"


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_450_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 450, f"{path.relative_to(ROOT.parent)} has {lines} lines: split it along a seam"
