#!/usr/bin/env bash
# Does a running taskhost pick up a new component from a ConfigMap volume? Kubernetes' fake nodes
# run no kubelet, so this reproduces what the kubelet does to a ConfigMap volume, with the image's
# own binary:
#
#   the volume   <dir>/..2026_11_24_15_00_00.1/sync.wasm     (the data, in a hidden directory)
#                <dir>/..data -> ..2026_11_24_15_00_00.1     (the current version)
#                <dir>/sync.wasm -> ..data/sync.wasm         (what the host sees)
#   an update    write a new hidden directory, point `..data_tmp` at it, rename `..data_tmp` over
#                `..data` (atomic), delete the old directory — `sync.wasm` itself is never written.
#
# It starts `taskhost serve` on that directory, makes such an update with a changed sync.wasm (the
# other components rewritten with the same bytes, as the kubelet does), and asks /admin/components
# which digest serves each component. Exit 0: sync hot-swapped to the new file's sha256 and every
# other component still serving its old digest; anything else fails, saying what was seen.
#
# Usage: deploy/k8s/check-configmap-swap.sh TASKHOST_BINARY V1_DIR V2_SYNC_WASM [--rename]
#   --rename  the control: replace sync.wasm the way the host documents (write a temporary file,
#             rename it over sync.wasm) instead of the kubelet's way, to show the check sees a swap
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

bin=${1:?taskhost binary} v1=${2:?dir of v1 .wasm} v2=${3:?changed sync.wasm} how=${4:-kubelet}
[[ $how == kubelet || $how == --rename ]] || k8s_die "unknown option '$how'"
work=$(mktemp -d "${TMPDIR:-/tmp}/taskhost-cm-swap.XXXXXX")
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
vol=$work/components
mkdir -p "$vol"

# kubelet's AtomicWriter, reduced to what a watcher can see
python3 - "$vol" "$v1" init <<'PY'
import os, shutil, sys, time
vol, src, mode = sys.argv[1], sys.argv[2], sys.argv[3]
ts = os.path.join(vol, time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(time.time_ns() % 10**6))
os.mkdir(ts)
for f in sorted(os.listdir(src)):
    if f.endswith(".wasm"): shutil.copy(os.path.join(src, f), ts)
os.symlink(os.path.basename(ts), os.path.join(vol, "..data"))
for f in sorted(os.listdir(ts)):
    os.symlink(os.path.join("..data", f), os.path.join(vol, f))
PY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=check-configmap-swap-admin-token
env -i TASKHOST_ADMIN_TOKEN=$token TASKHOST_LOG_FORMAT=text TASKHOST_CACHE_DIR="$work/cache" \
    "$bin" serve --dev --listen "127.0.0.1:$port" --components-dir "$vol" \
    --database-url "sqlite://$work/db.sqlite?mode=rwc" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.2; done
curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" || { tail -n 20 "$work/serve.log" >&2; k8s_die "taskhost did not become ready"; }
serving() {  # serving [NAME]: the digest serving NAME (default sync), or every "name=digest"
    curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/admin/components" | python3 -c '
import json, sys
want = sys.argv[1]
for c in json.load(sys.stdin):
    d = str(c.get("digest") or c.get("serving", {}).get("digest") or json.dumps(c))[:80]
    if want == "*" and c.get("name") != "sync": print("%s=%s" % (c.get("name"), d))
    elif c.get("name") == want: print(d)' "${1:-sync}"
}
before=$(serving)
others_before=$(serving '*')
[[ -n $before && -n $others_before ]] || k8s_die "/admin/components lists no sync or no other component"
want=$(sha256sum "$v2" | cut -d' ' -f1)

if [[ $how == --rename ]]; then
    cp "$v2" "$vol/sync.wasm.tmp" && mv -f "$vol/sync.wasm.tmp" "$vol/sync.wasm"
else
# the update, as the kubelet makes it
python3 - "$vol" "$v1" "$v2" <<'PY'
import os, shutil, sys, time
vol, v1, v2 = sys.argv[1:]
old = os.readlink(os.path.join(vol, "..data"))
ts = os.path.join(vol, time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(time.time_ns() % 10**6 + 1))
os.mkdir(ts)
for f in sorted(os.listdir(v1)):
    if f.endswith(".wasm"): shutil.copy(os.path.join(v1, f), ts)
shutil.copy(v2, os.path.join(ts, "sync.wasm"))
os.symlink(os.path.basename(ts), os.path.join(vol, "..data_tmp"))
os.rename(os.path.join(vol, "..data_tmp"), os.path.join(vol, "..data"))
shutil.rmtree(os.path.join(vol, old))
PY
fi
after=$before
for _ in $(seq 1 24); do
    after=$(serving)
    [[ $after != "$before" ]] && break
    sleep 0.25
done
others_after=$(serving '*')
if [[ $after == "$want"* || ( $after != "$before" && $want == "$after"* ) ]]; then
    [[ $others_after == "$others_before" ]] ||
        k8s_die "update ($how): the unchanged components were swapped too: $others_before -> $others_after"
    k8s_say "update ($how) hot-swapped: sync ${before:0:16}... -> ${after:0:16}...; $(wc -l <<<"$others_before") unchanged components kept"
    exit 0
fi
if [[ $after != "$before" ]]; then
    k8s_say "sync changed to $after, expected $want"
    exit 1
fi
k8s_say "update ($how) NOT picked up within 6 s: sync still serves ${before:0:16}... (the new file's sha256 is ${want:0:16}...)"
sed 's/\x1b\[[0-9;]*m//g' "$work/serve.log" | grep -E 'taskhost::(watch|runtime::swap)' | tail -n 3 | cut -c1-200 | sed 's/^/    host: /' >&2 || true
exit 1
