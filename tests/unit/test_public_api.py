"""The public surface: `almanet` is the only public module, lazy, and cheap to import."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

import almanet

ROOT = Path(almanet.__file__).resolve().parent

PUBLIC_NAMES = [
    "AbstractProcedure",
    "Almanet",
    "CallContext",
    "CallResult",
    "ConnectionOptions",
    "ConsumedMessage",
    "InternalError",
    "Procedure",
    "Service",
    "Subscription",
    "TLSOptions",
    "ValidationError",
    "__version__",
    "almanet_error",
    "broker_error",
    "config_error",
    "current_call",
    "invalid_argument",
    "new_service",
    "new_session",
    "reply_too_large",
    "rpc_error",
    "run",
    "session_state_error",
    "timeout_error",
]


def test_public_names_are_pinned() -> None:
    assert almanet.__all__ == PUBLIC_NAMES
    assert almanet.__all__ == sorted(almanet.__all__)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_each_public_name_resolves(name: str) -> None:
    value = getattr(almanet, name)
    assert value is not None
    if isinstance(value, type) or callable(value):
        # defined in almanet, re-exported: not a leaked third-party object
        assert value.__module__.startswith("almanet")


def test_lazy_names_are_the_real_objects() -> None:
    from almanet._calling.session import Almanet
    from almanet._wire.errors import rpc_error

    assert almanet.rpc_error is rpc_error
    assert almanet.Almanet is Almanet


def test_dir_lists_the_public_names() -> None:
    assert dir(almanet) == PUBLIC_NAMES


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        almanet.nope  # noqa: B018
    assert not hasattr(almanet, "_session_private_thing")


def test_error_tree() -> None:
    for name in ("config_error", "invalid_argument", "session_state_error", "broker_error", "rpc_error"):
        assert issubclass(getattr(almanet, name), almanet.almanet_error)
    assert issubclass(almanet.ValidationError, almanet.rpc_error)
    assert issubclass(almanet.InternalError, almanet.rpc_error)
    # a timeout is still the builtin TimeoutError (0.7.0 callers catch that), with a reason
    assert issubclass(almanet.timeout_error, almanet.almanet_error)
    assert issubclass(almanet.timeout_error, TimeoutError)


def test_produce_returns_a_future_not_a_coroutine() -> None:
    """``produce()`` queues the message at the call and returns its own future (no task per message
    for callers that gather many); ``await session.produce(...)`` reads as before."""
    import inspect

    assert not inspect.iscoroutinefunction(almanet.Almanet.produce)
    assert "Future[None]" in str(inspect.signature(almanet.Almanet.produce).return_annotation)
    assert inspect.iscoroutinefunction(almanet.Almanet.call)  # calls stay coroutines


def _fresh_import(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_almanet_is_light() -> None:
    out = _fresh_import("import almanet, sys; print('asyncio' in sys.modules, 'pydantic' in sys.modules)")
    assert out == "False False"


def test_the_fresh_import_check_can_see_a_heavy_import() -> None:
    """The probe above would notice: touching a lazy name does load asyncio and pydantic."""
    out = _fresh_import(
        "import almanet, sys; almanet.Service; print('asyncio' in sys.modules, 'pydantic' in sys.modules)"
    )
    assert out == "True True"


def test_import_cli_does_not_load_gnsq_or_pydantic() -> None:
    out = _fresh_import(
        "import almanet.cli, sys; print(sorted(m for m in ('gnsq', 'gevent', 'pydantic') if m in sys.modules))"
    )
    assert out == "[]"


# -- private modules ---------------------------------------------------------------------------


def _private_modules() -> list[str]:
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            if not path.read_text(encoding="utf-8").strip():
                continue  # an empty package marker exports nothing
        if any(p.startswith("_") for p in parts[1:]):
            names.append(".".join(parts))
    return names


PRIVATE = _private_modules()


def test_private_modules_were_found() -> None:
    for expected in ("almanet._wire.protocol", "almanet._nsq.codec", "almanet._calling.session"):
        assert expected in PRIVATE


@pytest.mark.parametrize("module", PRIVATE)
def test_private_module_declares_all(module: str) -> None:
    mod = importlib.import_module(module)
    exported = getattr(mod, "__all__", None)
    assert isinstance(exported, list | tuple), f"{module} declares no __all__"
    assert len(set(exported)) == len(exported), f"{module}.__all__ has duplicates"
    missing = [name for name in exported if not hasattr(mod, name)]
    assert not missing, f"{module}.__all__ names what it does not define: {missing}"


def _core_modules() -> dict[str, Path]:
    """almanet's private core (everything but the CLI)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        if not name.startswith("almanet.cli"):
            found[name] = path
    return found


def test_core_modules_use_only_each_others_exported_names() -> None:
    """`from almanet._x import y` and `_x.y` in the core name only what `_x.__all__` exports."""
    core = _core_modules()
    bad = []
    for module, path in core.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        aliases: dict[str, str] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base not in core:
                continue
            source = importlib.import_module(base)
            for alias in node.names:
                if f"{base}.{alias.name}" in core:
                    aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
                elif base != "almanet" and alias.name not in source.__all__:
                    bad.append(f"{module}:{node.lineno} imports {alias.name} from {base}, not in its __all__")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                source = importlib.import_module(aliases[node.value.id])
                if isinstance(source, types.ModuleType) and node.attr not in source.__all__:
                    bad.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}, not in its __all__")
    assert not bad, "\n".join(bad)
