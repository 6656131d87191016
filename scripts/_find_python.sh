# Sourced by test-pythons.sh and bench.sh: find_python X.Y prints an interpreter of that version
# that runs (on PATH as pythonX.Y, or under pyenv; a pyenv shim for a version not selected is on
# PATH but fails), or returns 1.
find_python() {
    local v="$1" p
    for p in "$(command -v "python$v" 2>/dev/null || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/"python$v"; do
        if [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'pass' >/dev/null 2>&1; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
