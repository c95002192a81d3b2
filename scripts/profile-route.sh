#!/usr/bin/env bash
# Profiles the release host on the Dapr delivery route (SQLite, single CloudEvents, 64
# connections): starts `taskhost serve` in Dapr mode on a fresh SQLite file, puts the route's
# load on it with `taskhost-bench load-route`, and records the whole process with
# `perf record -a -g` (system-wide, so the blocking pool's and sqlx's threads are all in it;
# the report keeps the host's samples only). Prints the host's CPU per delivery and writes
# the report (top symbols, with callers) next to perf.data.
#
# Usage: scripts/profile-route.sh OUT_DIR [SECONDS]   (after `just bench-build`)
# Environment: TASKHOST_PROFILE_CALLGRAPH (default: dwarf,16384), TASKHOST_PROFILE_ENV
# ("KEY=VALUE …" more environment for the host, e.g. to compare one setting;
# TASKHOST_WASM_PERFMAP=1 names the guests' own functions in the report).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:?usage: scripts/profile-route.sh OUT_DIR [SECONDS]}
seconds=${2:-8}
target=${CARGO_TARGET_DIR:-target}
host=$target/release/taskhost
bench=$target/release/taskhost-bench
components=${TASKHOST_COMPONENTS_OUT:-target/components}
for f in "$host" "$bench"; do [[ -x $f ]] || { echo "error: $f is missing: run \`just bench-build\`" >&2; exit 1; }; done
command -v perf >/dev/null || { echo "error: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
mkdir -p "$out"
db=$(mktemp -d /tmp/taskhost-profile.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
env TASKHOST_DELIVERY=dapr DAPR_HTTP_PORT=9 TASKHOST_CACHE_DIR="$db/cache" ${TASKHOST_PROFILE_ENV:-} \
    "$host" serve --dev --listen "127.0.0.1:$port" --components-dir "$components" \
    --database-url "sqlite://$db/taskhost.db?mode=rwc" 2>"$out/host.log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$db"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
# Warm up (compiled cache, pools, allocator), then measure CPU over the profiled load.
"$bench" load-route "http://127.0.0.1:$port/dapr/events/task-events" 2 >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before=$(ticks)
perf record -a -g --call-graph "${TASKHOST_PROFILE_CALLGRAPH:-dwarf,16384}" -F 499 -o "$out/perf.data" -- \
    "$bench" load-route "http://127.0.0.1:$port/dapr/events/task-events" "$seconds" | tee "$out/load.txt"
after=$(ticks)
delivered=$(awk '{for (i=1;i<=NF;i++) if ($i ~ /^\(/) {gsub(/\(/,"",$i); print $i}}' "$out/load.txt")
echo "host CPU: $(( (after - before) * 10 )) ms for $delivered deliveries (~$(( (after - before) * 10000 / (delivered > 0 ? delivered : 1) )) µs each, warm-up and load included)" | tee "$out/cpu.txt"
perf report -i "$out/perf.data" --pid "$pid" --no-children --sort dso,symbol --stdio 2>/dev/null | head -150 >"$out/top.txt"
perf report -i "$out/perf.data" --pid "$pid" --children --sort symbol --stdio -g caller,0.5,callee --percent-limit 2 2>/dev/null | head -400 >"$out/callers.txt"
echo "wrote $out/{perf.data,top.txt,callers.txt,cpu.txt}"
