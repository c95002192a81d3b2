#!/usr/bin/env bash
# Runs the `wasmtime run --invoke` lines of components/README.md against the built components
# and checks what they print, so the lines a user pastes from the README are known to work.
# Keep the calls here and in the README the same, character for character.
#
# Usage: scripts/test-components-cli.sh [DIR]
#   DIR   where recurrence.wasm, notification.wasm, audit.wasm and sync.wasm are;
#         default: ${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release-wasm.
# Exits non-zero if a component is missing, a call fails or its output lacks what it should say.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

case "${1:-}" in
    -h | --help) sed -n '2,9s/^# \{0,1\}//p' "$0" && exit 0 ;;
esac
target=${CARGO_TARGET_DIR:-target}
[[ $target == /* ]] || target=$root/$target
dir=${1:-$target/wasm32-wasip2/release-wasm}

# wasmtime may live in the venv scripts/install-tools.sh fills.
export PATH="$TASKHOST_VENV/bin:$PATH"
# This machine's default RUST_BACKTRACE=1 makes the CLI print a backtrace with every error.
export RUST_BACKTRACE=0
command -v wasmtime >/dev/null || die "wasmtime not found: run scripts/install-tools.sh (or \`just setup\`)"
for c in recurrence notification audit sync; do
    [[ -f $dir/$c.wasm ]] || die "$dir/$c.wasm not found: run \`just build-components\`"
done

failures=0

# check NAME WASM CALL EXPECTED...: runs CALL on DIR/WASM and checks that it succeeds and that
# its output (stdout then stderr) contains every EXPECTED string, as is (no patterns).
check() {
    local name=$1 wasm=$2 call=$3 output expected missing=()
    shift 3
    if ! output=$(wasmtime run --invoke "$call" "$dir/$wasm" 2>&1); then
        say "FAIL $name: wasmtime failed" "$output"
        failures=$((failures + 1))
        return
    fi
    for expected in "$@"; do
        grep -qF -- "$expected" <<<"$output" || missing+=("$expected")
    done
    if ((${#missing[@]})); then
        say "FAIL $name: the output lacks:"
        printf '       %s\n' "${missing[@]}"
        say "     output was:" "$output"
        failures=$((failures + 1))
    else
        say "ok   $name"
    fi
}

check "recurrence describe" recurrence.wasm 'describe()' \
    '{name: "recurrence", version: "' 'topics: ["task-events"]}'
check "notification describe" notification.wasm 'describe()' \
    '{name: "notification", version: "' 'topics: ["task-events", "task-updates", "reminders"]}'
check "audit describe" audit.wasm 'describe()' \
    '{name: "audit", version: "' 'topics: ["task-events", "task-updates"]}'
check "sync describe" sync.wasm 'describe()' \
    '{name: "sync", version: "' 'topics: ["task-events", "task-updates"]}'

check "recurrence: completing a monthly task due Jan 31 creates the next, due Feb 28" recurrence.wasm \
    'handle("task-events", task-event({
    event-id: "evt-1", operation: completed, occurred-at: 1769850000000, user-id: "alice",
    task: {id: "t1", title: "Pay rent", description: some("flat 4"), is-completed: true,
           priority: high, due-date: some(1769850000000),
           recurrence: some({frequency: monthly, interval: 1, ends-on: none,
                             max-occurrences: none, anchor: none}),
           tags: ["home"], reminder-offsets: none, occurrence: 1, series-id: none,
           created-at: 1767225600000, updated-at: 1769850000000,
           completed-at: some(1769850000000)},
    previous: none}), 1769850000000)' \
    'ok([create-task({idempotency-key: "recurrence:t1:2"' \
    'due-date: some(1772269200000)' 'anchor: some(1769850000000)' 'occurrence: 2'

check "recurrence: a series at its last occurrence creates nothing and says why on stderr" recurrence.wasm \
    'handle("task-events", task-event({
    event-id: "evt-6", operation: completed, occurred-at: 1769850000000, user-id: "alice",
    task: {id: "t1", title: "Pay rent", is-completed: true, priority: high,
           due-date: some(1769850000000),
           recurrence: some({frequency: monthly, interval: 1, max-occurrences: some(3)}),
           tags: [], occurrence: 3, series-id: some("s1"),
           created-at: 1767225600000, updated-at: 1769850000000}}), 1769850000000)' \
    'ok([])' 'series s1 ended: occurrence 3 of at most 3'

check "recurrence: interval 0 is dropped" recurrence.wasm \
    'handle("task-events", task-event({
    event-id: "evt-2", operation: completed, occurred-at: 1769850000000, user-id: "alice",
    task: {id: "t1", title: "Pay rent", is-completed: true, priority: high,
           due-date: some(1769850000000), recurrence: some({frequency: weekly, interval: 0}),
           tags: [], occurrence: 1, created-at: 1767225600000, updated-at: 1769850000000}}),
    1769850000000)' \
    'err(drop("recurrence interval must be at least 1"))'

check "notification: a new task due Feb 1 gets its two default reminders" notification.wasm \
    'handle("task-events", task-event({
    event-id: "evt-3", operation: created, occurred-at: 1769850000000, user-id: "alice",
    task: {id: "t1", title: "Pay rent", is-completed: false, priority: high,
           due-date: some(1769936400000), tags: [], occurrence: 1,
           created-at: 1769850000000, updated-at: 1769850000000}}), 1768435200000)' \
    'schedule-reminder({name: "reminder-t1-1440", due-at: 1769850000000' \
    'schedule-reminder({name: "reminder-t1-60", due-at: 1769932800000' \
    'event-id: "reminder:t1:60:1769936400000"'

check "notification: a reminder that came due notifies once" notification.wasm \
    'handle("reminders", reminder-due({
    event-id: "reminder:t1:60:1769936400000", occurred-at: 1769932800000, user-id: "alice",
    task: {id: "t1", title: "Pay rent", description: none, due-date: 1769936400000,
           priority: high},
    offset-minutes: 60}), 1769932800000)' \
    'ok([notify({idempotency-key: "reminder:t1:60:1769936400000"' \
    'title: "Reminder: Pay rent"' 'body: "“Pay rent” is due in 1 hour (2026-02-01 09:00 UTC)"'

check "audit: an update lists the changed fields as JSON" audit.wasm \
    'handle("task-events", task-event({
    event-id: "evt-4", operation: updated, occurred-at: 1769850000000, user-id: "alice",
    task: {id: "t1", title: "Pay \"the\" rent", description: none, is-completed: false,
           priority: high, due-date: some(1769936400000), recurrence: none, tags: ["home"],
           reminder-offsets: none, occurrence: 1, series-id: none,
           created-at: 1767225600000, updated-at: 1769850000000, completed-at: none},
    previous: some({id: "t1", title: "Pay rent", description: none, is-completed: false,
           priority: medium, due-date: some(1769936400000), recurrence: none, tags: ["home"],
           reminder-offsets: none, occurrence: 1, series-id: none,
           created-at: 1767225600000, updated-at: 1767225600000, completed-at: none})}),
    1769850000000)' \
    'ok([append-audit({event-id: "evt-4", task-id: "t1", actor: "alice", operation: updated' \
    '{field: "title", old: some("\"Pay rent\""), new: some("\"Pay \\\"the\\\" rent\"")}' \
    '{field: "priority", old: some("\"medium\""), new: some("\"high\"")}'

check "sync: a task update is pushed to the owner" sync.wasm \
    'handle("task-updates", task-event({
    event-id: "evt-5", operation: updated, occurred-at: 1769850000000, user-id: "alice",
    task: {id: "t1", title: "Pay rent", description: none, is-completed: false,
           priority: high, due-date: some(1769936400000), recurrence: none,
           tags: ["home", "money"], reminder-offsets: some([1440, 60]), occurrence: 1,
           series-id: none, created-at: 1767225600000, updated-at: 1769850000000,
           completed-at: none},
    previous: none}), 1769850000000)' \
    'ok([broadcast({user-id: "alice", operation: updated, task-id: "t1", task: some({id: "t1"' \
    'at: 1769850000000})])'

if ((failures)); then
    die "$failures component CLI check(s) failed (components in $dir)"
fi
say "all component CLI checks passed (components in $dir)"
