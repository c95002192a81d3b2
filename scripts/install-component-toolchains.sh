#!/usr/bin/env bash
# Installs the pinned toolchains that build consumer components, from the package registries,
# into ~/.cache/taskhost/toolchains (or $TASKHOST_CACHE/toolchains), once. An install that
# was interrupted is started over; concurrent runs wait for each other.
#
#   rust        rustup's cargo with the wasm32-wasip2 target (a generated project pins its
#               toolchain in rust-toolchain.toml; rustup installs it on first use); the
#               wit-bindgen crate comes from crates.io with the project's build
#   python      componentize-py 0.25.1 (PyPI), in a venv
#   javascript  @bytecodealliance/componentize-js 0.23.0 and @bytecodealliance/jco 1.35.0 (npm)
#
# `taskhost build` runs this very script (it is embedded in the binary) when a toolchain it
# needs is missing. For each language asked for it prints one line, `LANGUAGE<TAB>DIR`: DIR
# holds the toolchain's commands (bin/componentize-py, node_modules/.bin/componentize-js).
#
# Usage: scripts/install-component-toolchains.sh [rust] [python] [javascript]   (none: all)
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
COMPONENTIZE_JS_VERSION=0.23.0
# componentize-js depends on jco ^1; pinning it at the top level makes npm use this one.
JCO_VERSION=1.35.0
RUST_TARGET=wasm32-wasip2

root=${TASKHOST_CACHE:-$HOME/.cache/taskhost}/toolchains

say() { printf '%s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# run_quietly CMD...: runs CMD with its output kept aside, shown only if it fails.
run_quietly() {
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "failed: $*"
    fi
    rm -f "$log"
}

# install_once DIR INSTALLER: unless DIR is complete (has .installed, written last), runs
# INSTALLER DIR on an emptied DIR, then marks it complete. Holds a lock meanwhile.
install_once() {
    local dir=$1 installer=$2
    [[ -e $dir/.installed ]] && return 0
    mkdir -p "$root"
    exec 9>"$root/.lock"
    flock 9
    if [[ ! -e $dir/.installed ]]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        "$installer" "$dir"
        date -u '+%Y-%m-%dT%H:%M:%SZ' >"$dir/.installed"
    fi
    flock -u 9
}

python_toolchain() {
    local dir=$root/componentize-py-$COMPONENTIZE_PY_VERSION
    install_py() {
        command -v python3 >/dev/null ||
            die "python3 not found: install Python 3.10 or later (Debian: apt-get install python3 python3-venv)"
        say "installing componentize-py $COMPONENTIZE_PY_VERSION (PyPI) into $dir"
        python3 -m venv "$1" >/dev/null 2>&1 ||
            die "python3 cannot make a venv (Debian: apt-get install python3-venv)"
        run_quietly "$1/bin/python" -m pip install --quiet --disable-pip-version-check \
            "componentize-py==$COMPONENTIZE_PY_VERSION"
    }
    install_once "$dir" install_py
    printf 'python\t%s\n' "$dir"
}

javascript_toolchain() {
    local dir=$root/componentize-js-$COMPONENTIZE_JS_VERSION-jco-$JCO_VERSION
    install_js() {
        command -v npm >/dev/null || die "npm not found: install Node.js 18 or later (with npm)"
        local major
        major=$(node -p 'process.versions.node.split(".")[0]')
        ((major >= 18)) || die "Node.js $(node --version) is too old: componentize-js needs 18 or later"
        say "installing @bytecodealliance/componentize-js $COMPONENTIZE_JS_VERSION and jco $JCO_VERSION (npm) into $dir"
        printf '{"name":"taskhost-js-toolchain","private":true}\n' >"$1/package.json"
        run_quietly npm install --prefix "$1" --no-audit --no-fund --save-exact \
            "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" \
            "@bytecodealliance/jco@$JCO_VERSION"
    }
    install_once "$dir" install_js
    printf 'javascript\t%s\n' "$dir"
}

rust_toolchain() {
    command -v cargo >/dev/null ||
        die "cargo not found: install Rust with rustup (https://rustup.rs), then run this again"
    # The project's rust-toolchain.toml names the toolchain and the wasm32-wasip2 target, and
    # rustup installs both on first use. Without rustup (a system cargo) the target must be
    # installed already.
    if ! command -v rustup >/dev/null; then
        say "note: no rustup; cargo must already have the $RUST_TARGET target"
    fi
    printf 'rust\t%s\n' "$(dirname "$(command -v cargo)")"
}

languages=("$@")
((${#languages[@]})) || languages=(rust python javascript)
for language in "${languages[@]}"; do
    case $language in
        rust) rust_toolchain ;;
        python) python_toolchain ;;
        javascript | js) javascript_toolchain ;;
        -h | --help) sed -n '2,17s/^# \{0,1\}//p' "$0" && exit 0 ;;
        *) die "unknown language '$language' (rust, python or javascript)" ;;
    esac
done
