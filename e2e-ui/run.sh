#!/usr/bin/env bash
# The web page's browser tests: Debian's Chromium, driven by playwright-core, against the real
# taskhost binary (`serve --dev`, SQLite, a free port). Screenshots go to target/ui-screenshots/.
#
#   e2e-ui/run.sh                 build what is missing, then run the tests
#
# It installs Chromium with apt-get when /usr/bin/chromium is missing (playwright's own
# browser download does not work here), runs `npm ci` in e2e-ui/, and builds the host (debug,
# as `cargo test` does) and the four components unless given:
#   TASKHOST_BIN=path/to/taskhost  TASKHOST_COMPONENTS_DIR=dir/with/the/four/.wasm
# UI_KEEP=1 keeps the scratch dir (database, host log) even when the tests pass.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/lib.sh
started=$SECONDS

# ---- the browser ----
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
    say "== installing Debian's chromium =="
    apt_install chromium
fi
say "== $("$chromium" --version 2>/dev/null) =="

# ---- the driver ----
if ! command -v npm >/dev/null; then
    say "== installing Debian's nodejs and npm =="
    apt_install nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node.js $(node --version) is too old: playwright-core needs Node 20 or newer"
say "== npm ci (playwright-core, no browser download) =="
(cd e2e-ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 quietly npm ci --no-audit --no-fund)

# ---- the host and its components ----
target=${CARGO_TARGET_DIR:-$root/target}
if [[ -z ${TASKHOST_COMPONENTS_DIR:-} ]]; then
    say "== building the components =="
    cargo build -q --profile release-wasm --target wasm32-wasip2 -p recurrence -p notification -p audit -p sync
    TASKHOST_COMPONENTS_DIR=$target/wasm32-wasip2/release-wasm
fi
if [[ -z ${TASKHOST_BIN:-} ]]; then
    say "== building the host =="
    cargo build -q -p taskhost
    TASKHOST_BIN=$target/debug/taskhost
fi
[[ -x $TASKHOST_BIN ]] || die "no taskhost binary at $TASKHOST_BIN"

# ---- scratch: only the four components, the database, the logs ----
work=$(mktemp -d "${TMPDIR:-/tmp}/taskhost-e2e-ui.XXXXXX")
mkdir -p "$work/components"
for c in recurrence notification audit sync; do
    [[ -f $TASKHOST_COMPONENTS_DIR/$c.wasm ]] || die "$c.wasm is missing from $TASKHOST_COMPONENTS_DIR: build the components (just build-components)"
    cp "$TASKHOST_COMPONENTS_DIR/$c.wasm" "$work/components/"
done
cleanup() {
    local rc=$?
    # The test stops its host; should node itself die, stop the host it left behind.
    if [[ -f $work/taskhost.pid ]]; then
        kill "$(cat "$work/taskhost.pid")" 2>/dev/null || true
    fi
    if ((rc == 0)) && [[ -z ${UI_KEEP:-} ]]; then
        rm -rf "$work"
    else
        say "scratch dir kept: $work (taskhost.log is the host's log)"
    fi
    say "== e2e-ui finished in $((SECONDS - started)) s, exit $rc =="
}
trap cleanup EXIT

shots=$root/target/ui-screenshots
rm -rf "$shots"
mkdir -p "$shots"
say "== browser tests (setup and build took $((SECONDS - started)) s) =="
(cd e2e-ui && TASKHOST_BIN=$TASKHOST_BIN TASKHOST_COMPONENTS_DIR=$work/components \
    UI_SCREENSHOTS=$shots UI_WORK_DIR=$work CHROMIUM=$chromium \
    timeout 900 node --test --test-reporter=spec test.mjs)
say "screenshots: $(cd "$shots" && ls | tr '\n' ' ')"
