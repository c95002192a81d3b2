# Helpers shared by taskhost's scripts. Source it (`. scripts/lib.sh`): it only defines
# variables and functions, and changes no shell option of the script that sources it.
# shellcheck shell=bash disable=SC2034  # its variables are used by the scripts that source it

# Where the tools that are not the system's live (a Python venv for just, wasmtime and
# wasm-tools) and where CI keeps its cargo target dir. The justfile uses the same path.
TASKHOST_CACHE=${TASKHOST_CACHE:-$HOME/.cache/taskhost}
TASKHOST_VENV=$TASKHOST_CACHE/venv

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# quietly CMD...: runs CMD with its output held back, and shows that output only if it
# fails, so a run where everything works prints one line per step rather than pages.
quietly() {
    local log rc=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || rc=$?
    if ((rc != 0)); then
        cat "$log" >&2
        printf "error: '%s' failed (exit %d)\n" "$*" "$rc" >&2
    fi
    rm -f "$log"
    return "$rc"
}

# apt_install PKG...: installs Debian packages without asking anything (no stdin in CI).
# `apt-get update` runs once per script, before the first install.
apt_install() {
    local sudo=()
    command -v apt-get >/dev/null ||
        die "$* needed, and there is no apt-get here: install them with your system's package manager"
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "$* needed: install them as root (apt-get install $*)"
        sudo=(sudo -n)
    fi
    if [[ -z ${_TASKHOST_APT_UPDATED:-} ]]; then
        quietly "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
        _TASKHOST_APT_UPDATED=1
    fi
    quietly "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "$@"
}
