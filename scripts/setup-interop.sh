#!/usr/bin/env bash
# The real almanet 0.7.0 from PyPI, for tests/interop/test_almanet070.py, in .tools/almanet070-venv.
#
# 0.7.0 requires Python >= 3.12 (it uses PEP 695 generics), so this venv is built with a 3.12+
# interpreter: $ALMANET_INTEROP_PYTHON, else python3.12/python3.13 on PATH, else a pyenv one.
# Never fails the set-up: when it cannot build the venv it writes the reason to
# .tools/almanet070-venv.unavailable and the 0.7.0 tests skip with that text.
# Skipped quickly when the venv is already there (or failed before, see below); ALMANET_SKIP_INTEROP=1 skips it entirely.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/almanet070-venv"
READY="$VENV/.almanet070-ready"
UNAVAILABLE="$ROOT/.tools/almanet070-venv.unavailable"
# What the 0.7.0 tests ran against; ansq 0.3.x and pydantic 2 are 0.7.0's own constraints.
REQUIREMENTS=(almanet==0.7.0 "ansq>=0.3.0,<0.4.0" "pydantic>=2.7.1,<3")

say() { printf 'setup-interop: %s\n' "$*"; }
unavailable() {
    mkdir -p "$ROOT/.tools"
    printf '%s\n' "$*" > "$UNAVAILABLE"
    say "skipped: $* (the almanet 0.7.0 interop tests will be skipped)"
    exit 0
}

if [ "${ALMANET_SKIP_INTEROP:-}" = 1 ]; then
    say "ALMANET_SKIP_INTEROP=1: not preparing almanet 0.7.0"
    exit 0
fi
if [ -f "$READY" ] && "$VENV/bin/python" -c pass >/dev/null 2>&1; then
    say "almanet 0.7.0 venv up to date in .tools/almanet070-venv"
    exit 0
fi

# A failure is remembered (fast set-ups offline); delete that file, or edit this script, to retry.
if [ -f "$UNAVAILABLE" ] && [ "$UNAVAILABLE" -nt "${BASH_SOURCE[0]}" ]; then
    say "almanet 0.7.0 unavailable (cached, rm $UNAVAILABLE to retry): $(cat "$UNAVAILABLE")"
    exit 0
fi

is_312() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
    local candidate
    for candidate in "${ALMANET_INTEROP_PYTHON:-}" python3.12 python3.13 python3.14 python3; do
        [ -n "$candidate" ] || continue
        candidate="$(command -v "$candidate" 2>/dev/null)" || continue
        if is_312 "$candidate"; then echo "$candidate"; return 0; fi
    done
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
        if [ -x "$candidate" ] && is_312 "$candidate"; then echo "$candidate"; return 0; fi
    done
    return 1
}

PY="$(find_python)" || unavailable "almanet 0.7.0 needs Python >= 3.12 and none was found (set ALMANET_INTEROP_PYTHON=/path/to/python3.12)"

say "creating .tools/almanet070-venv with $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])')) ..."
rm -rf "$VENV"
mkdir -p "$ROOT/.tools"
log="$ROOT/.tools/almanet070-install.log"
if ! "$PY" -m venv "$VENV" > "$log" 2>&1; then
    unavailable "cannot create a venv with $PY: $(tail -n 1 "$log")"
fi
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --retries 1 --timeout 20 \
        "${REQUIREMENTS[@]}" >> "$log" 2>&1; then
    rm -rf "$VENV"
    unavailable "pip install almanet==0.7.0 failed: $(grep -m1 -E '^ERROR' "$log" || tail -n 1 "$log") (full log: $log)"
fi
# from / : run in the checkout, `import almanet` would find our own package instead
if ! (cd / && "$VENV/bin/python" -c 'import almanet, ansq, importlib.metadata as m; assert m.version("almanet") == "0.7.0"') >> "$log" 2>&1; then
    rm -rf "$VENV"
    unavailable "almanet 0.7.0 installed but does not import: $(tail -n 1 "$log")"
fi
rm -f "$UNAVAILABLE"
touch "$READY"
say "almanet 0.7.0 ready: $("$VENV/bin/python" -m pip freeze 2>/dev/null | grep -E '^(almanet|ansq|pydantic)==' | tr '\n' ' ')"
