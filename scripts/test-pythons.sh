#!/usr/bin/env bash
# The other supported Pythons: on each one found (3.11 to 3.14, on PATH as pythonX.Y or under
# pyenv), a venv of its own (.venv-pyX.Y, made by setup.sh) runs the unit tests and a small
# integration subset; the whole suite runs on .venv's interpreter (`make test`). A version that is
# not installed is skipped and said so; a failing one fails the run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SUBSET=(
    tests/unit
    tests/integration/test_rpc.py
    tests/integration/test_procedure_context.py
    tests/integration/test_deadlines.py
    tests/integration/test_produce_future.py
    tests/integration/test_produce_consume.py
    tests/integration/test_publish_batching.py
)
say() { printf 'test-pythons: %s\n' "$*"; }

# shellcheck source=scripts/_find_python.sh
. "$ROOT/scripts/_find_python.sh"

main="$("$ROOT/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
ran=0
for v in 3.11 3.12 3.13 3.14; do
    [ "$v" = "$main" ] && continue
    if ! py="$(find_python "$v")"; then
        say "Python $v not found; skipped"
        continue
    fi
    say "Python $v ($py): unit tests and an integration subset"
    PYTHON="$py" ALMANET_VENV="$ROOT/.venv-py$v" SKIP_INTEROP=1 ./scripts/setup.sh
    "$ROOT/.venv-py$v/bin/python" -m pytest -q -p no:cacheprovider "${SUBSET[@]}"
    ran=$((ran + 1))
done
say "$ran other Python version(s) tested (the whole suite runs on Python ${main:-of .venv} with make test)"
