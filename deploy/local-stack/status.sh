#!/usr/bin/env bash
# Show what runs of taskhost's local stack, and whether each part answers.
# Exit status: 0 when Kafka, PostgreSQL and the scheduler all answer (daprd is optional), 1 otherwise.
# Usage: deploy/local-stack/status.sh
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

rc=0
line() { printf '  %-10s %-8s %s\n' "$1" "$2" "$3"; }
pid_text() { local p; p=$(pid_of "$1") && echo "pid $p" || echo "no process"; }

echo "taskhost local stack ($TASKHOST_STACK_RUN)"
if tcp_open "$KAFKA_PORT"; then line kafka up "127.0.0.1:$KAFKA_PORT, $(pid_text kafka)"
else line kafka DOWN "127.0.0.1:$KAFKA_PORT, $(pid_text kafka)"; rc=1; fi

pg_isready=$PG_BIN/pg_isready
[[ -x $pg_isready ]] || pg_isready=$(find /usr/lib/postgresql/*/bin -maxdepth 1 -name pg_isready 2>/dev/null | sort -V | tail -n 1)
if [[ -n $pg_isready ]] && "$pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d "$PG_DB" -t 2; then
    line postgres up "$DATABASE_URL"
else line postgres DOWN "127.0.0.1:$PG_PORT"; rc=1; fi

if curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$SCHED_HEALTHZ_PORT/healthz"; then
    line scheduler up "127.0.0.1:$SCHED_PORT (healthz :$SCHED_HEALTHZ_PORT), $(pid_text scheduler)"
else line scheduler DOWN "127.0.0.1:$SCHED_PORT, $(pid_text scheduler)"; rc=1; fi

# daprd: /v1.0/healthz/outbound = sidecar + components; /v1.0/healthz also needs the app channel.
d=http://127.0.0.1:$DAPR_HTTP_PORT
if curl -sf -o /dev/null --max-time 2 "$d/v1.0/healthz/outbound"; then
    app=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$d/v1.0/healthz")
    meta=$(curl -sf --max-time 2 ${DAPR_API_TOKEN:+-H "dapr-api-token: $DAPR_API_TOKEN"} "$d/v1.0/metadata" |
        python3 -c 'import sys, json
m = json.load(sys.stdin)
print("app-id %s, components %s, subscriptions %s" % (m.get("id"),
      ",".join(c["name"] for c in m.get("components", [])),
      ",".join("%s->%s" % (s.get("topic"), ((s.get("rules") or [{}])[0]).get("path", "?")) for s in m.get("subscriptions", [])) or "none"))' 2>/dev/null)
    line daprd up "127.0.0.1:$DAPR_HTTP_PORT, $(pid_text daprd), app channel $([[ $app == 204 ]] && echo ready || echo "not ready ($app)"); ${meta:-metadata n/a}"
else
    line daprd "-" "not running on 127.0.0.1:$DAPR_HTTP_PORT ($(pid_text daprd)); start it with daprd.sh or up.sh --with-daprd"
fi
exit "$rc"
