#!/usr/bin/env bash
# Prepare a checkout for tests, the demo and the benchmark:
#   1. the NSQ daemons and tools (nsqd, nsqlookupd, nsq_tail, to_nsq v1.3.0) in .tools/bin,
#      built from the pinned Go module in almanet/testing/gomod (`almanet testing install-nsqd`'s too);
#   2. a virtualenv in .venv with almanet installed editable plus the `dev` extra;
#   3. tmux and zsh for the terminal tests, with apt-get, only when missing and run as root;
#   4. Debian's chromium for the browser tests of `almanet ui` (tests/ui), likewise (otherwise
#      those tests skip, saying why; in CI they fail);
#   5. the official AsyncAPI parser (npm, pinned) in .tools/npm for tests/contracts.
# Each step is skipped when its inputs have not changed, so `make test` stays fast.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS_BIN="$ROOT/.tools/bin"
NSQ_MOD="$ROOT/almanet/testing/gomod"
NSQ_TOOLS=(nsqd nsqlookupd nsq_tail to_nsq)
VENV="${ALMANET_VENV:-$ROOT/.venv}"  # make bench PYTHON=... makes its own
STAMP="$VENV/.almanet-install-stamp"
PYTHON="${PYTHON:-python3}"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- NSQ tools

find_go() {
    if command -v go >/dev/null 2>&1; then
        command -v go
    elif [ -x /usr/local/go/bin/go ]; then
        echo /usr/local/go/bin/go
    fi
}

# True when every tool is in .tools/bin and none is older than the module files.
tools_fresh() {
    local t
    for t in "${NSQ_TOOLS[@]}"; do
        [ -x "$TOOLS_BIN/$t" ] || return 1
        [ "$NSQ_MOD/go.mod" -nt "$TOOLS_BIN/$t" ] && return 1
        [ -f "$NSQ_MOD/go.sum" ] && [ "$NSQ_MOD/go.sum" -nt "$TOOLS_BIN/$t" ] && return 1
    done
    return 0
}

tools_on_path() {
    local t
    for t in "${NSQ_TOOLS[@]}"; do
        command -v "$t" >/dev/null 2>&1 || return 1
    done
    return 0
}

go_version_ok() {
    # go.mod asks for go 1.21; older toolchains either fail or try to download a newer one.
    local v major minor
    v="$("$1" env GOVERSION 2>/dev/null || true)"   # e.g. go1.22.5
    v="${v#go}"
    major="${v%%.*}"
    minor="${v#*.}"; minor="${minor%%.*}"
    [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
    (( major > 1 || (major == 1 && minor >= 21) ))
}

setup_tools() {
    if tools_fresh; then
        say "NSQ tools up to date in .tools/bin"
        return
    fi
    local go
    go="$(find_go)"
    if [ -z "$go" ]; then
        if [ -x "$TOOLS_BIN/nsqd" ] && [ -x "$TOOLS_BIN/nsqlookupd" ] \
            && [ -x "$TOOLS_BIN/nsq_tail" ] && [ -x "$TOOLS_BIN/to_nsq" ]; then
            say "warning: almanet/testing/gomod changed but Go is not installed; keeping the existing .tools/bin"
            return
        fi
        if tools_on_path; then
            say "Go not found; using nsqd, nsqlookupd, nsq_tail, to_nsq from PATH ($(command -v nsqd))"
            return
        fi
        die "Go is needed to build nsqd/nsqlookupd/nsq_tail/to_nsq into .tools/bin.
  install Go >= 1.21: apt-get install golang-go, or see https://go.dev/doc/install
  (or put nsqd, nsqlookupd, nsq_tail and to_nsq v1.3.0 on PATH: https://nsq.io/deployment/installing.html)"
    fi
    go_version_ok "$go" || die "Go >= 1.21 is needed, found '$("$go" version 2>/dev/null)' at $go.
  install Go >= 1.21: apt-get install golang-go, or see https://go.dev/doc/install"
    say "building NSQ tools (${NSQ_TOOLS[*]}) into .tools/bin with $("$go" env GOVERSION) ..."
    mkdir -p "$TOOLS_BIN"
    local pkgs=() t
    for t in "${NSQ_TOOLS[@]}"; do pkgs+=("github.com/nsqio/nsq/apps/$t"); done
    (cd "$NSQ_MOD" && GOTOOLCHAIN="${GOTOOLCHAIN:-local}" "$go" build -o "$TOOLS_BIN/" "${pkgs[@]}") \
        || die "go build failed in almanet/testing/gomod (needs the Go module proxy, or a filled module cache)"
    # go build may leave an unchanged binary's mtime alone; the freshness check relies on it.
    for t in "${NSQ_TOOLS[@]}"; do touch "$TOOLS_BIN/$t"; done
    say "NSQ tools built: $("$TOOLS_BIN/nsqd" --version 2>&1 | head -n1)"
}

# ---------------------------------------------------------------- Python venv

setup_venv() {
    command -v "$PYTHON" >/dev/null 2>&1 \
        || die "$PYTHON not found; install Python >= 3.11 (apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.11"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python >= 3.11 is needed, $PYTHON is $("$PYTHON" -c 'import sys; print(sys.version.split()[0])'); set PYTHON=/path/to/python3.11"

    # A venv whose interpreter vanished (python upgraded or removed) is rebuilt from scratch.
    if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'pass' >/dev/null 2>&1; then
        say "existing ${VENV#"$ROOT"/} is broken; recreating it"
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating ${VENV#"$ROOT"/} with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
        "$PYTHON" -m venv "$VENV" \
            || die "could not create .venv; on Debian/Ubuntu install python3-venv (apt-get install python3-venv)"
    fi

    local want have=""
    want="$(cksum < pyproject.toml)"
    [ -f "$STAMP" ] && have="$(cat "$STAMP")"
    if [ "$want" = "$have" ] && [ -x "$VENV/bin/pytest" ]; then
        say "${VENV#"$ROOT"/} up to date"
        return
    fi
    say "installing almanet (editable) with the dev extra into ${VENV#"$ROOT"/} ..."
    # The build backend is chatty (deprecation warnings); keep its output for when it fails.
    local log="$VENV/pip-install.log"
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -e '.[dev]' > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "pip install -e '.[dev]' failed; full output in $log"
    fi
    # pyright's PyPI package downloads its node build from npm on first run: do it now, not in CI's middle
    if [ -x "$VENV/bin/pyright" ] && ! "$VENV/bin/pyright" --version > "$VENV/pyright-install.log" 2>&1; then
        tail -n 20 "$VENV/pyright-install.log" >&2
        die "pyright could not fetch its node build (npm registry); full output in $VENV/pyright-install.log"
    fi
    printf '%s\n' "$want" > "$STAMP"
    say "${VENV#"$ROOT"/} ready"
}

# ---------------------------------------------------------------- Debian packages for some tests

APT_UPDATED=""

# apt-get install PACKAGES, output in LOG; `apt-get update` runs once per run, before the first
# install (a fresh machine's package lists may be empty or old).
apt_install() {
    local log="$1"; shift
    {
        if [ -z "$APT_UPDATED" ]; then
            apt-get update && APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    } > "$log" 2>&1
}

# ---------------------------------------------------------------- terminal tools for the CLI tests

# tests/cli/test_terminal.py drives the CLI in a real terminal (tmux): colour, NO_COLOR, the
# progress bar, shell completion in bash and zsh. Installed with apt-get only when missing and
# when we are root (CI starts from a fresh Debian/Ubuntu); otherwise those tests say what to install.
setup_terminal_tools() {
    local missing=() t
    for t in tmux zsh; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "tmux and zsh present"
        return
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "warning: ${missing[*]} missing (not root or no apt-get): the terminal tests skip; install ${missing[*]}"
        return
    fi
    say "installing ${missing[*]} with apt-get (for the terminal tests) ..."
    local log="${TMPDIR:-/tmp}/almanet-apt.log"
    if ! apt_install "$log" "${missing[@]}"; then
        tail -n 20 "$log" >&2
        say "warning: apt-get could not install ${missing[*]}: the terminal tests skip (full output in $log)"
    fi
}

# ---------------------------------------------------------------- browser (tests/ui)

# tests/ui drive Debian's chromium with playwright (executable_path: playwright's own browser
# download is never used). apt-get only when it is missing and we are root.
setup_browser() {
    if command -v chromium >/dev/null 2>&1; then
        say "chromium found ($(command -v chromium))"
        return
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "warning: chromium missing and cannot apt-get it (not root, or no apt-get);"
        say "  the browser tests in tests/ui will skip (fail in CI): apt-get install chromium"
        return
    fi
    say "installing chromium (apt-get) for the browser tests ..."
    local log="$ROOT/.tools/apt-chromium.log"
    mkdir -p "$ROOT/.tools"
    # fonts-liberation: a recommended package of chromium, so that pages have text to render
    if ! apt_install "$log" chromium fonts-liberation; then
        tail -n 30 "$log" >&2
        die "apt-get install chromium fonts-liberation failed; full output in $log"
    fi
    command -v chromium >/dev/null 2>&1 || die "apt-get installed chromium, yet chromium is not on PATH"
    say "browser ready: $(chromium --version 2>/dev/null | head -n1)"
}

# ---------------------------------------------------------------- AsyncAPI parser (tests/contracts)

# tests/contracts validate `almanet asyncapi`'s documents with the official parser
# (@asyncapi/parser) and the spec's JSON schema (@asyncapi/specs, with ajv), run by node:
# scripts/asyncapi/validate.mjs. The versions are pinned in scripts/asyncapi/package-lock.json;
# `npm ci` installs exactly those into .tools/npm (no install scripts run).
NPM_DIR="$ROOT/.tools/npm"
setup_asyncapi_parser() {
    local src="$ROOT/scripts/asyncapi" want have=""
    want="$(cat "$src/package.json" "$src/package-lock.json" | cksum)"
    [ -f "$NPM_DIR/.stamp" ] && have="$(cat "$NPM_DIR/.stamp")"
    if [ "$want" = "$have" ] && [ -d "$NPM_DIR/node_modules/@asyncapi/parser" ]; then
        say "AsyncAPI parser up to date in .tools/npm"
        return
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            say "warning: node/npm missing (not root or no apt-get): tests/contracts' parser checks skip (fail in CI);"
            say "  install Node.js >= 18 with npm (apt-get install nodejs npm)"
            return
        fi
        say "installing nodejs and npm with apt-get (for the AsyncAPI parser) ..."
        local log="${TMPDIR:-/tmp}/almanet-apt-node.log"
        apt_install "$log" nodejs npm || { tail -n 20 "$log" >&2; die "apt-get install nodejs npm failed; full output in $log"; }
    fi
    say "installing @asyncapi/parser (pinned in scripts/asyncapi/package-lock.json) into .tools/npm ..."
    mkdir -p "$NPM_DIR"
    cp "$src/package.json" "$src/package-lock.json" "$NPM_DIR/"
    local log="$NPM_DIR/npm-ci.log"
    if ! (cd "$NPM_DIR" && npm ci --ignore-scripts --no-audit --no-fund) > "$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "npm ci of the AsyncAPI parser failed (needs the npm registry); full output in $log"
    fi
    printf '%s\n' "$want" > "$NPM_DIR/.stamp"
    say "AsyncAPI parser ready: @asyncapi/parser $(node -p "require('$NPM_DIR/node_modules/@asyncapi/parser/package.json').version")"
}

setup_tools
setup_venv
setup_terminal_tools
setup_browser
setup_asyncapi_parser
# almanet 0.7.0 from PyPI for tests/interop/test_almanet070.py (skips itself when it cannot)
[ -n "${SKIP_INTEROP:-}" ] || "$ROOT/scripts/setup-interop.sh"
