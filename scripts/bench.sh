#!/usr/bin/env bash
# `make bench`: one run of bench/run.py with the Go floor, the almanet side on .venv's Python and
# again on the newest other Python found (3.14 to 3.12, on PATH or under pyenv; its own venv
# .venv-pyX.Y, made by setup.sh), interleaved, each with its own table in bench/RESULTS.md.
# None found: .venv's table alone, and it says so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/_find_python.sh
. "$ROOT/scripts/_find_python.sh"
say() { printf 'bench: %s\n' "$*"; }

main="$("$ROOT/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
also=()
for v in 3.14 3.13 3.12; do
    [ "$v" = "$main" ] && break  # nothing newer than .venv's own
    if py="$(find_python "$v")"; then
        say "almanet also on Python $v ($py)"
        PYTHON="$py" ALMANET_VENV="$ROOT/.venv-py$v" SKIP_INTEROP=1 ./scripts/setup.sh
        also=(--also-python "$ROOT/.venv-py$v/bin/python")
        break
    fi
done
[ ${#also[@]} -gt 0 ] || say "no Python newer than $main found: one table"
exec "$ROOT/.venv/bin/python" bench/run.py "${also[@]}" "$@"
