"""Finding the NSQ binaries a test needs, and building them with Go when there are none.

Search order for a tool (``nsqd``, ``nsqlookupd``, ...): ``$ALMANET_<TOOL>_BIN``; for tools other
than nsqd, the folder of ``$ALMANET_NSQD_BIN``; ``PATH``; ``.tools/bin`` of the current directory
or any parent (where ``make setup`` puts the project's own build); the folder that ``almanet testing
install-nsqd`` fills. Nothing found is one error that says how to get the binary.

The build uses the small Go module shipped in ``gomod/`` (the same one ``make setup`` builds): it
requires github.com/nsqio/nsq v1.3.0 with nsq's own ``replace``, which ``go install pkg@version``
refuses, so we ``go build`` inside a copy of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "NSQ_VERSION",
    "BuildError",
    "NsqProcessError",
    "NsqToolNotFound",
    "build_tools",
    "find_go",
    "find_tool",
    "install_dir",
]

NSQ_VERSION = "v1.3.0"
GO_MODULE = Path(__file__).with_name("gomod")
RELEASES = "https://nsq.io/deployment/installing.html"
MIN_GO = (1, 21)


class NsqProcessError(RuntimeError):
    """A daemon could not be found, did not start, or did not answer in time."""


class NsqToolNotFound(NsqProcessError):
    """No binary of that NSQ tool anywhere we look."""


class BuildError(RuntimeError):
    """Building the NSQ tools failed (no Go, an old Go, or go build itself failed)."""


def install_dir() -> Path:
    """The user-local folder ``almanet testing install-nsqd`` builds into (XDG data home)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "almanet" / "bin"


def _env_var(name: str) -> str:
    return f"ALMANET_{name.upper()}_BIN"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_tool(name: str, cwd: str | os.PathLike[str] | None = None) -> str:
    """The path of NSQ tool ``name``; raises NsqToolNotFound with how to get it."""
    variable = _env_var(name)
    pinned = os.environ.get(variable)
    if pinned:
        if not _executable(Path(pinned)):
            raise NsqToolNotFound(f"{variable}={pinned} is not an executable file: point it at an {name} binary")
        return pinned
    here = Path.cwd() if cwd is None else Path(cwd)
    nsqd_bin = os.environ.get("ALMANET_NSQD_BIN")
    if nsqd_bin and name != "nsqd" and _executable(Path(nsqd_bin).parent / name):
        return str(Path(nsqd_bin).parent / name)  # nsqlookupd next to the nsqd one pinned
    on_path = shutil.which(name)
    if on_path:
        return on_path
    for folder in (here, *here.parents):
        local = folder / ".tools" / "bin" / name
        if _executable(local):
            return str(local)
    installed = install_dir() / name
    if _executable(installed):
        return str(installed)
    raise NsqToolNotFound(_not_found_message(name))


def _not_found_message(name: str) -> str:
    where = f"${_env_var(name)}, PATH, ./.tools/bin (and its parents' .tools/bin), {install_dir()}"
    if name in ("nsqd", "nsqlookupd"):
        how = (
            f"run `almanet testing install-nsqd` (builds nsqd and nsqlookupd {NSQ_VERSION} with Go into "
            f"{install_dir()}), or put the nsq {NSQ_VERSION} release binaries on PATH ({RELEASES})"
        )
    else:
        how = f"put the nsq {NSQ_VERSION} release binaries on PATH ({RELEASES}), or run `make setup` in almanet's repo"
    return f"{name} not found (looked at {where}): {how}"


def find_go() -> str | None:
    """``go`` on PATH, else the usual /usr/local/go install."""
    found = shutil.which("go")
    if found:
        return found
    usual = Path("/usr/local/go/bin/go")
    return str(usual) if _executable(usual) else None


def _go_version(go: str) -> tuple[str, tuple[int, int] | None]:
    """(what ``go env GOVERSION`` says, its (major, minor) when it parses)."""
    try:
        done = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return str(exc), None
    text = done.stdout.strip()  # go1.22.5
    parts = text.removeprefix("go").split(".")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return text or done.stderr.strip()[:200], None
    return text, (int(parts[0]), int(parts[1]))


def build_tools(
    target: Path,
    tools: Sequence[str] = ("nsqd", "nsqlookupd"),
    go: str | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> list[Path]:
    """Build ``tools`` of nsq v1.3.0 into ``target``; returns their paths. Raises BuildError."""
    if go is not None and shutil.which(go) is None:
        raise BuildError(f"no go command at {go!r}: give the path of Go's go binary (Go >= 1.21)")
    go = go or find_go()
    if go is None:
        raise BuildError(
            "Go is needed to build nsqd: install Go >= 1.21 (apt-get install golang-go, or https://go.dev/doc/install),"
            f" or put the nsq {NSQ_VERSION} release binaries on PATH ({RELEASES})"
        )
    said, version = _go_version(go)
    if version is None or version < MIN_GO:
        raise BuildError(f"Go >= 1.21 is needed to build nsqd, {go} says {said!r}: upgrade Go")
    target.mkdir(parents=True, exist_ok=True)
    packages = [f"github.com/nsqio/nsq/apps/{tool}" for tool in tools]
    say(f"building {', '.join(tools)} {NSQ_VERSION} into {target} with {said} ...")
    with tempfile.TemporaryDirectory(prefix="almanet-gomod-") as work:
        # a copy: the package folder may be read-only, and go may want to touch go.sum
        for name in ("go.mod", "go.sum", "tools.go"):
            shutil.copyfile(GO_MODULE / name, Path(work) / name)
        env = {**os.environ, "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local")}
        done = subprocess.run(
            [go, "build", "-o", f"{target}{os.sep}", *packages],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BuildError(f"go build failed (it needs the Go module proxy or a filled module cache):\n{tail}")
    built = [target / tool for tool in tools]
    missing = [str(path) for path in built if not _executable(path)]
    if missing:
        raise BuildError(f"go build reported success but did not write {', '.join(missing)}")
    return built
