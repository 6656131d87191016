"""Finding and reading almanet.toml: which file, and its values with the line each was written on.

Split from ``_config.py`` (which checks the values): tomllib keeps no positions, so pointing a
message at ``file:line`` takes a scan of the text, and that scan is most of this module.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from almanet._wire.errors import config_error

__all__ = ["CONFIG_FILE_NAME", "Raw", "did_you_mean", "find_config_file", "read_file"]

CONFIG_FILE_NAME = "almanet.toml"


# --------------------------------------------------------------------------- file lookup


def find_config_file(
    config_path: str | os.PathLike[str] | None, env: Mapping[str, str], cwd: Path
) -> tuple[Path | None, str]:
    """The file to read and how it was found: argument, $ALMANET_CONFIG, ./almanet.toml, user dir.

    A file asked for by name (argument or variable) must exist: silently falling back to
    defaults would connect somewhere the user did not mean.
    """
    if config_path is not None and str(config_path) != "":
        return _must_exist(cwd / Path(config_path), "the --config argument"), "argument"
    named = env.get("ALMANET_CONFIG", "")
    if named:
        return _must_exist(cwd / Path(named), "$ALMANET_CONFIG"), "env:ALMANET_CONFIG"
    local = cwd / CONFIG_FILE_NAME
    if local.is_file():
        return local, "cwd"
    user_dir = _user_config_dir(env)
    if user_dir is not None and (user_dir / CONFIG_FILE_NAME).is_file():
        return user_dir / CONFIG_FILE_NAME, "user"
    return None, "none"


def _must_exist(path: Path, named_by: str) -> Path:
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise config_error(f"config file {path} (named by {named_by}) {what}")
    return path


def _user_config_dir(env: Mapping[str, str]) -> Path | None:
    """XDG rules, read from `env` only (so tests never see the real home); relative XDG is ignored."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "almanet"
    home = env.get("HOME", "")
    return Path(home) / ".config" / "almanet" if home else None


# --------------------------------------------------------------------------- reading the file


@dataclasses.dataclass(frozen=True, slots=True)
class Raw:
    """One value before checking, with what a message needs to point at it."""

    value: Any
    source: str  # provenance shown to the user
    where: str  # message prefix: "file:line", "$VAR" or "argument"
    base: Path  # relative paths are resolved against this directory


def read_file(path: Path, sections: Mapping[str, tuple[str, ...]]) -> dict[str, Raw]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise config_error(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise config_error(f"{path}: not UTF-8 text; save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _decode_error(path, text, exc) from None
    lines = text.splitlines()
    raws: dict[str, Raw] = {}
    for section, table in data.items():
        if section not in sections:
            line = _find_line(lines, section, None)
            raise config_error(f"{_at(path, line)}: unknown section [{section}]{_suggest_section(section, sections)}")
        if not isinstance(table, dict):
            line = _find_line(lines, section, None)
            raise config_error(f"{_at(path, line)}: `{section}` must be a table: write [{section}]")
        for name, value in table.items():
            line = _find_line(lines, section, name)
            if name not in sections[section]:
                hint = _suggest_key(section, name, sections)
                raise config_error(f"{_at(path, line)}: unknown key `{name}` in [{section}]{hint}")
            raws[f"{section}.{name}"] = Raw(value, f"file:{path}", _at(path, line), path.parent)
    return raws


def _decode_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> config_error:
    """Point at file:line:column; tomllib has attributes only since 3.14, so parse the message."""
    message = str(getattr(exc, "msg", "") or exc)
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        line, column = int(match[1]), int(match[2])
        message = message[: match.start()]
    elif message.endswith("(at end of document)"):
        line = max(1, len(text.splitlines()))
        message = message.removesuffix("(at end of document)").rstrip() + " at end of file"
    where = f"{path}:{line}:{column}" if line and column else _at(path, line)
    return config_error(f"{where}: invalid TOML: {message}")


def _at(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def _find_line(lines: list[str], section: str, name: str | None) -> int | None:
    """1-based line where `section` (or `name` inside it) is written, or None.

    tomllib keeps no positions, so scan the text for the usual spellings: a ``[section]``
    header followed by ``name = ...``, or a dotted ``section.name = ...``.
    """

    def quoted(word: str) -> str:
        return rf"""["']?{re.escape(word)}["']?"""

    header = re.compile(rf"^\s*\[\[?\s*{quoted(section)}\s*[\].]")
    if name is None:
        patterns = [header, re.compile(rf"^\s*{quoted(section)}\s*[=.]")]
        return next((i + 1 for p in patterns for i, ln in enumerate(lines) if p.match(ln)), None)
    key = re.compile(rf"^\s*{quoted(name)}\s*[=.]")
    start = next((i for i, ln in enumerate(lines) if header.match(ln)), None)
    if start is not None:
        for i in range(start + 1, len(lines)):
            if re.match(r"^\s*\[", lines[i]):
                break
            if key.match(lines[i]):
                return i + 1
    anywhere = re.compile(rf"""(^|[\s.\[{{,]){quoted(name)}\s*[=.\]]""")
    return next((i + 1 for i, ln in enumerate(lines) if anywhere.search(ln)), None if start is None else start + 1)


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def _suggest_section(section: str, sections: Mapping[str, tuple[str, ...]]) -> str:
    owners = [s for s, names in sections.items() if section in names]
    if owners:
        return f"; `{section}` is a key: put it under [{owners[0]}]"
    return did_you_mean(section, list(sections)) or f"; valid sections: {', '.join(sections)}"


def _suggest_key(section: str, name: str, sections: Mapping[str, tuple[str, ...]]) -> str:
    owners = [s for s, names in sections.items() if name in names]
    if owners:
        return f"; `{name}` belongs under [{owners[0]}]"
    return did_you_mean(name, list(sections[section])) or (f"; valid keys: {', '.join(sections[section])}")
