#!/usr/bin/env bash
# Run taskhost's end-to-end tests through the real Dapr stack (host/tests/e2e_dapr.rs): builds the
# components and the host, starts Kafka + PostgreSQL + the Dapr scheduler (up.sh), and runs
#   cargo test -p taskhost --test e2e_dapr -- --ignored --test-threads=1
# The tests start daprd themselves (daprd.sh, with the tests' APP_API_TOKEN/DAPR_API_TOKEN) and
# run taskhost on 127.0.0.1:$APP_PORT. On exit, whatever happened, daprd is stopped and a taskhost
# the tests left behind is killed; Kafka, PostgreSQL and the scheduler keep running for the next
# run unless --down is given.
#
# Usage: deploy/local-stack/e2e.sh [--down] [--no-build] [--suite NAME] [-- extra test-harness args, e.g. a test name]
#   --down       also stop the stack at the end (down.sh; data kept)
#   --no-build   skip building the components and the host (they must be built already)
#   --release    build and run the tests (and so the host) with the release profile (the soak)
#   --suite NAME the test target to run: e2e_dapr (default), or e2e_faults (the fault suite,
#                `just e2e-faults`: it kills and restarts Kafka, daprd, the scheduler and taskhost)
# Settings: deploy/local-stack/env.sh (APP_PORT, DAPR_HTTP_PORT, PG_PORT, TASKHOST_STACK_RUN, ...),
# CARGO_TARGET_DIR, TASKHOST_COMPONENTS_OUT (where the .wasm files go, default target/components).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

down=0 build=1 extra=() tests_started=0 suite=e2e_dapr profile=()
while (($#)); do
    case $1 in
        --down) down=1; shift ;;
        --no-build) build=0; shift ;;
        --release) profile=(--release); shift ;;
        --suite) suite=${2:?--suite needs a test target name}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) stack_die "unknown argument '$1' (see $0 --help)" ;;
    esac
done

say() { printf '[e2e] %s\n' "$*"; }
cd "$TASKHOST_REPO"
target_dir=${CARGO_TARGET_DIR:-$TASKHOST_REPO/target}
[[ $target_dir == /* ]] || target_dir=$TASKHOST_REPO/$target_dir
components_dir=${TASKHOST_COMPONENTS_OUT:-target/components}
[[ $components_dir == /* ]] || components_dir=$TASKHOST_REPO/$components_dir
taskhost_bin=$target_dir/debug/taskhost
((${#profile[@]} == 0)) || taskhost_bin=$target_dir/release/taskhost

t_all=$(now_ms)
timings=()
# secs MS: milliseconds as seconds with one decimal
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }
# timed NAME CMD...: run CMD, remember how long it took
timed() {
    local name=$1 t0 rc=0; shift
    t0=$(now_ms)
    say "== $name"
    "$@" || rc=$?
    timings+=("$(printf '%-30s %7s s%s' "$name" "$(secs $(($(now_ms) - t0)))" "$( ((rc == 0)) || echo "  (failed, exit $rc)")")")
    return "$rc"
}

cleanup() {
    local rc=$? pid exe
    trap - EXIT INT TERM
    say "== cleanup"
    "$STACK_DIR/daprd.sh" stop || true
    # A taskhost the tests left behind (e.g. the test process was killed): our binary only, by
    # pid, and only once the tests ran (before that, the port was checked to be free).
    if ((tests_started)); then
        for pid in $(ss -Hltnp "sport = :$APP_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
            exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
            if [[ ${exe% (deleted)} == "$taskhost_bin" ]]; then
                say "stopping a taskhost the tests left running (pid $pid)"
                kill -TERM "$pid" 2>/dev/null || true
            fi
        done
    fi
    if ((down)); then
        timed "down.sh" "$STACK_DIR/down.sh" || true
    else
        say "Kafka, PostgreSQL and the scheduler keep running (stop them with deploy/local-stack/down.sh)"
    fi
    say "== timings"
    printf '[e2e]   %s\n' "${timings[@]}"
    printf '[e2e]   %-30s %7s s\n' total "$(secs $(($(now_ms) - t_all)))"
    if ((rc == 0)); then say "end-to-end tests passed"; else say "FAILED (exit $rc); logs: $STACK_LOGS, and the tails printed above"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_components() {
    if command -v just >/dev/null; then
        just build-components
    else
        cargo build --profile release-wasm --target wasm32-wasip2 -p recurrence -p notification -p audit -p sync
        mkdir -p "$components_dir"
        for c in recurrence notification audit sync; do
            src=$target_dir/wasm32-wasip2/release-wasm/$c.wasm dst=$components_dir/$c.wasm
            cmp -s "$src" "$dst" || { cp "$src" "$dst.tmp" && mv -f "$dst.tmp" "$dst"; }
        done
    fi
}

if ((build)); then
    timed "build components" build_components
    timed "build taskhost" cargo build "${profile[@]}" -p taskhost
    timed "build $suite" cargo test "${profile[@]}" -p taskhost --test "$suite" --no-run
fi
for c in recurrence notification audit sync; do
    [[ -f $components_dir/$c.wasm ]] || stack_die "$components_dir/$c.wasm is missing: run without --no-build (or just build-components)"
done

timed "up.sh (Kafka, PG, scheduler)" "$STACK_DIR/up.sh"
# The tests start daprd with their tokens and the current resources: stop one that runs.
"$STACK_DIR/daprd.sh" stop
require_free_port "$APP_PORT" "taskhost (the e2e tests)" APP_PORT
# The tests' daprd (app id taskhost, so consumer group taskhost) must see the events the tests
# publish, not whatever `just bench` or an aborted run left in the shared topics before them.
timed "skip the Kafka backlog" "$STACK_DIR/skip-backlog.sh" taskhost

export TASKHOST_TEST_COMPONENTS_DIR=$components_dir
export TASKHOST_E2E_DATABASE_URL=$DATABASE_URL
export TASKHOST_STACK_RUN APP_PORT DAPR_HTTP_PORT
say "database $TASKHOST_E2E_DATABASE_URL, app port $APP_PORT, daprd http $DAPR_HTTP_PORT, components $components_dir"
tests_started=1
timed "tests ($suite)" cargo test "${profile[@]}" -p taskhost --test "$suite" -- --ignored --test-threads=1 --show-output "${extra[@]}"
