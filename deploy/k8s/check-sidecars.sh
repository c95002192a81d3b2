#!/usr/bin/env bash
# What the Kubernetes test cannot show with fake nodes (no sidecar is injected there): the chart's
# Dapr resources in two real daprd sidecars of one app id, like two replicas, against a real Kafka.
#
#   - the resources are the chart's: deploy/dapr/*.yaml plus the Subscription the chart renders
#     (helm template --show-only templates/dapr-socket-fanout.yaml), loaded by daprd 1.18.0
#     (the local stack's DAPR_VERSION) against Kafka 4.4.0 (its KAFKA_VERSION);
#   - sidecar A runs with TASKHOST_KAFKA_VERSION empty (Dapr's default protocol, 2.0.0), sidecar B
#     with the chart's 3.9.0: both must initialise pubsub-kafka and pubsub-kafka-sockets;
#   - task-updates published once reach BOTH apps (pubsub-kafka-sockets: a group per sidecar);
#   - task-events published once reach exactly one of the two (pubsub-kafka: the app id's group).
#
# Kafka, PostgreSQL and the scheduler come from deploy/local-stack (its scripts, on other ports and
# in another run dir, so a running local stack is not disturbed); everything on 127.0.0.1; all of
# it is stopped and deleted at the end. Needs daprd (deploy/local-stack/build-dapr.sh, cached).
# Usage: deploy/k8s/check-sidecars.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

export TASKHOST_STACK_RUN=${CHECK_STACK_RUN:-/tmp/taskhost-k8s-sidecars}
# Every port below Linux's ephemeral range (32768-60999): a port in it can be the local end of a
# client connection at the moment a server binds it ("address already in use").
export KAFKA_PORT=19192 KAFKA_CONTROLLER_PORT=19193 PG_PORT=19432 SCHED_PORT=19006 SCHED_HEALTHZ_PORT=19081 \
    SCHED_ETCD_CLIENT_PORT=19379 SCHED_ETCD_PEER_PORT=19380
export SCHED_ADDRESS=127.0.0.1:$SCHED_PORT
stack=$TASKHOST_REPO/deploy/local-stack
work=$TASKHOST_STACK_RUN/check
helm=$K8S_BIN/helm
app_id=taskhost   # the chart's dapr.appId: the Subscription is scoped to it

pids=()
cleanup() {
    local rc=$? p
    if [[ ${CHECK_KEEP:-0} == 1 ]]; then k8s_say "CHECK_KEEP=1: left running; logs in $work"; exit "$rc"; fi
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    "$stack/down.sh" --purge >/dev/null 2>&1 || true
    ((rc != 0)) || rm -f "$TASKHOST_STACK_RUN.up.log"
    exit "$rc"
}
trap cleanup EXIT

"$stack/down.sh" --purge >/dev/null 2>&1 || true
t0=$(now_ms)
"$stack/up.sh" >"$TASKHOST_STACK_RUN.up.log" 2>&1 || { tail -n 20 "$TASKHOST_STACK_RUN.up.log" >&2; k8s_die "local stack (Kafka) did not start"; }
mkdir -p "$work/resources"
k8s_say "$(grep -o 'starting kafka [^ ]*' "$TASKHOST_STACK_RUN.up.log" | sed 's/starting k/K/' || echo Kafka) on $KAFKA_PORT up in $(secs_since "$t0") s"

# The resources daprd loads: deploy/dapr's files (copied: same bytes) + the chart's Subscription.
cp "$TASKHOST_REPO"/deploy/dapr/*.yaml "$work/resources/"
"$helm" template "$app_id" "$CHART_DIR" --set secrets.existingSecret=x --set dapr.appTokenSecret=x \
    --set dapr.appId="$app_id" --show-only templates/dapr-socket-fanout.yaml 2>/dev/null >"$work/resources/subscription.yaml"

# A minimal app: subscribes task-events on pubsub-kafka (programmatic, like taskhost), takes the
# chart's declarative task-updates deliveries (bulk or single), and logs what arrived.
cat >"$work/app.py" <<'PY'
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, log = int(sys.argv[1]), open(sys.argv[2], "a", buffering=1)
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, body):
        b = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def do_GET(self):
        if self.path in ("/healthz", "/readyz"):   # daprd's app health check
            return self.reply(200, {"status": "ok"})
        if self.path == "/dapr/subscribe":
            return self.reply(200, [{"pubsubname": "pubsub-kafka", "topic": "task-events",
                                     "routes": {"default": "/events"}, "deadLetterTopic": "task-events-dlq"}])
        self.reply(404, {})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        topic = "task-events" if self.path == "/events" else self.path.rsplit("/", 1)[-1]
        if "entries" in body:   # bulk delivery
            for e in body["entries"]:
                ev = e.get("event", {})
                log.write(f"{topic} {(ev.get('data') or {}).get('n')}\n")
            return self.reply(200, {"statuses": [{"entryId": e["entryId"], "status": "SUCCESS"} for e in body["entries"]]})
        log.write(f"{topic} {(body.get('data') or {}).get('n')}\n")
        self.reply(200, {"status": "SUCCESS"})
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY

start_sidecar() {  # start_sidecar NAME APP_PORT HTTP GRPC INTERNAL METRICS [KAFKA_VERSION]
    local name=$1 app=$2 http=$3 grpc=$4 internal=$5 metrics=$6 kv=${7:-}
    python3 "$work/app.py" "$app" "$work/$name.log" &
    pids+=($!)
    : >"$work/$name.log"
    (
        export DAPR_HTTP_PORT=$http DAPR_GRPC_PORT=$grpc DAPR_INTERNAL_GRPC_PORT=$internal DAPR_METRICS_PORT=$metrics
        export TASKHOST_KAFKA_VERSION=$kv   # empty: Dapr's default (daprd.sh keeps an empty value)
        exec "$stack/daprd.sh" --foreground --app-id "$app_id" --app-port "$app" \
            --resources-path "$work/resources" --config "$work/resources/config.yaml" --scheduler "$SCHED_ADDRESS"
    ) >"$work/daprd-$name.log" 2>&1 &
    pids+=($!)
}
start_sidecar a 18181 13591 15101 15102 19291
start_sidecar b 18182 13592 15111 15112 19292 3.9.0
for s in "a 13591" "b 13592"; do
    set -- "${s% *}" "${s#* }"
    for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$2/v1.0/healthz" && break; sleep 0.2; done
    curl -sf -o /dev/null "http://127.0.0.1:$2/v1.0/healthz" ||
        { tail -n 30 "$work/daprd-$1.log" >&2; k8s_die "daprd $1 did not become healthy with the chart's Dapr resources"; }
    comps=$(curl -sf "http://127.0.0.1:$2/v1.0/metadata" | python3 -c '
import json, sys; m = json.load(sys.stdin)
print(m.get("runtimeVersion"), "|", " ".join(sorted(c["name"] for c in m.get("components", []))), "|",
      " ".join(sorted("%s/%s(%s)" % (s["pubsubname"], s["topic"], s.get("type", "")) for s in m.get("subscriptions", []))))')
    k8s_say "daprd $1 up: version | components | subscriptions: $comps"
done
# each consumer needs its partitions assigned before it sees anything published after it joined
# (pubsub-kafka-sockets starts at the newest offset): wait until a probe message arrives at both
for i in $(seq 1 60); do
    curl -sf -X POST "http://127.0.0.1:13591/v1.0/publish/pubsub-kafka-sockets/task-updates" \
        -H 'Content-Type: application/json' -d "{\"n\": \"probe$i\"}" >/dev/null || true
    sleep 0.5
    grep -q probe "$work/a.log" && grep -q probe "$work/b.log" && break
done
if ! { grep -q probe "$work/a.log" && grep -q probe "$work/b.log"; }; then
    { grep -hiE 'level=(warn|error|fatal)' "$work/daprd-a.log" "$work/daprd-b.log" | tail -n 20 >&2
      echo "app a: $(wc -l <"$work/a.log") deliveries, app b: $(wc -l <"$work/b.log")" >&2
      k8s_die "task-updates never reached both sidecars' apps"; }
fi
: >"$work/a.log"; : >"$work/b.log"
n=6
for i in $(seq 1 $n); do
    curl -sf -X POST "http://127.0.0.1:13591/v1.0/publish/pubsub-kafka-sockets/task-updates?metadata.partitionKey=u$i" \
        -H 'Content-Type: application/json' -d "{\"n\": $i}" || k8s_die "publish to task-updates failed"
    curl -sf -X POST "http://127.0.0.1:13592/v1.0/publish/pubsub-kafka/task-events?metadata.partitionKey=u$i" \
        -H 'Content-Type: application/json' -d "{\"n\": $i}" || k8s_die "publish to task-events failed (sidecar b, TASKHOST_KAFKA_VERSION=3.9.0)"
done
for _ in $(seq 1 100); do
    ua=$(grep -c '^task-updates [0-9]' "$work/a.log" || true); ub=$(grep -c '^task-updates [0-9]' "$work/b.log" || true)
    ea=$(grep -c '^task-events ' "$work/a.log" || true); eb=$(grep -c '^task-events ' "$work/b.log" || true)
    ((ua >= n && ub >= n && ea + eb >= n)) && break
    sleep 0.2
done
sleep 1   # a duplicate would arrive now
ua=$(grep -c '^task-updates [0-9]' "$work/a.log" || true); ub=$(grep -c '^task-updates [0-9]' "$work/b.log" || true)
ea=$(grep -c '^task-events ' "$work/a.log" || true); eb=$(grep -c '^task-events ' "$work/b.log" || true)
((ua == n && ub == n)) || k8s_die "task-updates: app a got $ua, app b got $ub of $n (each should get all)"
((ea + eb == n)) || k8s_die "task-events: apps got $ea + $eb of $n (together exactly once each)"
dups=$(cat "$work/a.log" "$work/b.log" | grep '^task-events ' | sort | uniq -d)
[[ -z $dups ]] || k8s_die "task-events delivered twice: $dups"
k8s_say "task-updates x$n -> a $ua, b $ub (every replica); task-events x$n -> a $ea + b $eb (one group, once each)"
k8s_say "sidecar checks passed in $(secs_since "$t0") s"
