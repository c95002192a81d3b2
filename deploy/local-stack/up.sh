#!/usr/bin/env bash
# Start taskhost's local stack on 127.0.0.1: Kafka 4 (KRaft), PostgreSQL 15 (database `taskhost`),
# the Dapr scheduler (Jobs API) and, with --with-daprd, a daprd sidecar for the app.
# Idempotent: whatever already runs is left alone. First run builds daprd (minutes, cached in
# ~/.cache/taskhost) and fetches the Kafka jars; later runs start in a few seconds.
#
# Usage: deploy/local-stack/up.sh [--with-daprd]
#   --with-daprd   also start daprd via daprd.sh (APP_ID, APP_PORT, DAPR_RESOURCES, APP_API_TOKEN...
#                  from the environment). Without it, start daprd next to the app yourself:
#                  deploy/local-stack/daprd.sh --app-port 8080 [--foreground]
# Settings: deploy/local-stack/env.sh (every value can be overridden from the environment).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

with_daprd=0
for arg in "$@"; do
    case $arg in
        --with-daprd) with_daprd=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) stack_die "unknown argument '$arg' (usage: $0 [--with-daprd])" ;;
    esac
done
t_start=$(now_ms)

# kafka/: log4j 2 configuration and the pom's log binding are Kafka 4's (Kafka 3.x logs through
# reload4j and would start without any log, so up.sh would never see it start).
[[ ${KAFKA_VERSION%%.*} -ge 4 ]] 2>/dev/null ||
    stack_die "KAFKA_VERSION=$KAFKA_VERSION: the local stack runs Kafka 4.x only (its logging setup in $STACK_DIR/kafka is Kafka 4's)"
for tool in java curl ss setsid flock timeout; do
    command -v "$tool" >/dev/null || stack_die "'$tool' is not on PATH (java: apt-get install openjdk-17-jre-headless; ss: iproute2)"
done

# ---------- builds and downloads (cached) ----------
"$STACK_DIR/build-dapr.sh"
"$STACK_DIR/fetch-kafka.sh"

# PostgreSQL binaries: the Debian packages put them in /usr/lib/postgresql/<major>/bin.
if [[ ! -x $PG_BIN/postgres ]]; then
    found=$(find /usr/lib/postgresql/*/bin -maxdepth 1 -name postgres -type f 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z $found ]]; then
        command -v apt-get >/dev/null || stack_die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin) and there is no apt-get: install PostgreSQL $PG_VERSION and set PG_BIN"
        sudo=()
        if ((EUID != 0)); then sudo=(sudo -n); fi
        stack_say "PostgreSQL not found: apt-get install postgresql-$PG_VERSION (Debian packages)"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
            stack_die "apt-get update failed; install PostgreSQL $PG_VERSION yourself"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "postgresql-$PG_VERSION" ||
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql ||
            stack_die "apt-get install postgresql-$PG_VERSION failed; install PostgreSQL yourself and set PG_BIN"
        found=$(find /usr/lib/postgresql/*/bin -maxdepth 1 -name postgres -type f 2>/dev/null | sort -V | tail -n 1 || true)
        [[ -n $found ]] || stack_die "apt-get installed PostgreSQL but there is still no /usr/lib/postgresql/*/bin/postgres"
    fi
    [[ $(dirname "$found") == "$PG_BIN" ]] || stack_warn "PostgreSQL $PG_VERSION not found; using $(dirname "$found")"
    PG_BIN=$(dirname "$found")
fi

# 755: the postgres user must be able to traverse it
[[ -d $TASKHOST_STACK_RUN ]] || { mkdir -p "$TASKHOST_STACK_RUN" && chmod 755 "$TASKHOST_STACK_RUN"; }
mkdir -p "$STACK_LOGS"
stack_lock
stack_say "run-time state in $TASKHOST_STACK_RUN (logs: $STACK_LOGS)"

# ---------- Kafka: one KRaft node (broker + controller) ----------
kafka_dir=$TASKHOST_STACK_RUN/kafka
kafka_started=0 kafka_t0=
if pid=$(pid_of kafka); then
    stack_say "kafka already running (pid $pid)"
else
    require_free_port "$KAFKA_PORT" kafka KAFKA_PORT
    require_free_port "$KAFKA_CONTROLLER_PORT" "kafka (controller)" KAFKA_CONTROLLER_PORT
    mkdir -p "$kafka_dir"
    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@KAFKA_DATA@|$kafka_dir/data|g" "$STACK_DIR/kafka/server.properties.tmpl" >"$kafka_dir/server.properties"
    if [[ ! -f $kafka_dir/data/meta.properties ]]; then
        # Cluster id: base64url of 16 random bytes, like `StorageTool random-uuid`. An id that starts with
        # '-' would be read as an option, so draw again in that case.
        while :; do
            cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
            [[ $cluster_id != -* ]] && break
        done
        stack_say "kafka: formatting $kafka_dir/data (cluster id $cluster_id)"
        java -Dlog4j2.configurationFile="$STACK_DIR/kafka/log4j2-tools.properties" -cp "$KAFKA_LIBS/*" \
            kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$kafka_dir/server.properties" >/dev/null ||
            stack_die "kafka storage format failed (see above)"
    fi
    stack_say "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)"
    kafka_t0=$(now_ms)
    # shellcheck disable=SC2086  # KAFKA_HEAP / KAFKA_JVM_OPTS are lists of JVM flags
    start_bg kafka java $KAFKA_HEAP $KAFKA_JVM_OPTS -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$STACK_DIR/kafka/log4j2.properties" -Dkafka.logs.dir="$STACK_LOGS" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$kafka_dir/server.properties"
    kafka_started=1
fi

# ---------- PostgreSQL ----------
# As root the server must run as $PG_OS_USER (postgres refuses root). Run it from / because that
# user usually cannot enter the caller's working directory (e.g. /root/...).
as_pg() {
    # 8>&-: the server pg_ctl starts must not inherit (and so hold) this script's lock
    if ((EUID == 0)); then (cd / && runuser -u "$PG_OS_USER" -- "$@" 8>&-); else (cd / && "$@" 8>&-); fi
}
if ((EUID == 0)); then
    id "$PG_OS_USER" >/dev/null 2>&1 || stack_die "no '$PG_OS_USER' OS user to run PostgreSQL as (apt-get install postgresql creates it)"
fi
mkdir -p "$PG_DIR"
if ((EUID == 0)); then chown "$PG_OS_USER": "$PG_DIR"; fi
chmod 700 "$PG_DIR"
as_pg test -w "$PG_DIR" ||
    stack_die "the '$PG_OS_USER' user cannot write $PG_DIR (is a parent directory closed to it?). Put TASKHOST_STACK_RUN under /tmp"
if [[ ! -f $PG_DIR/data/PG_VERSION ]]; then
    stack_say "postgres: initdb $PG_DIR/data (superuser postgres, password auth on TCP)"
    printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pwfile"
    if ((EUID == 0)); then chown "$PG_OS_USER": "$PG_DIR/pwfile"; fi
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --pwfile="$PG_DIR/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
        { cat "$PG_DIR/initdb.log" >&2; rm -f "$PG_DIR/pwfile"; stack_die "initdb failed (output above)"; }
    rm -f "$PG_DIR/pwfile"
fi
if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
    stack_say "postgres already running"
else
    require_free_port "$PG_PORT" postgres PG_PORT
    stack_say "starting postgres $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
    t0=$(now_ms)
    # the log and the unix socket live in $PG_DIR: the postgres user cannot write our root-owned logs dir
    # Started again (3 attempts) when its port was taken as it bound: see wait_restarting.
    for attempt in 1 2 3; do
        logged=$(stat -c %s "$PG_DIR/postgres.log" 2>/dev/null || echo 0)
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null && break
        if ((attempt < 3)) && tail -c +$((logged + 1)) "$PG_DIR/postgres.log" | grep -q 'Address already in use'; then
            stack_warn "port $PG_PORT was taken as postgres started (attempt $attempt); starting it again in 2 s"
            sleep 2
            continue
        fi
        tail -n 30 "$PG_DIR/postgres.log" >&2
        stack_die "postgres did not start (log above: $PG_DIR/postgres.log)"
    done
    stack_say "postgres ready after $(($(now_ms) - t0)) ms"
fi
if ! as_pg "$PG_BIN/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -tAc \
    "select 1 from pg_database where datname = '$PG_DB'" | grep -qx 1; then
    stack_say "postgres: creating database $PG_DB"
    as_pg "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres "$PG_DB" || stack_die "createdb $PG_DB failed"
fi
# the URL the app will use: TCP + password
PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" "$DATABASE_URL" -tAc 'select 1' >/dev/null ||
    stack_die "cannot connect to $DATABASE_URL (see $PG_DIR/postgres.log)"

# ---------- Dapr scheduler (Jobs API, embedded etcd) ----------
sched_dir=$TASKHOST_STACK_RUN/scheduler
sched_t0=
# 1.16.5 ignores --healthz-listen-address and --metrics-listen-address, so healthz listens on all
# interfaces (it only answers GET /healthz) and metrics are switched off.
start_scheduler() {
    sched_t0=$(now_ms)
    start_bg scheduler "$DAPR_BIN/scheduler" --mode standalone \
        --listen-address 127.0.0.1 --port "$SCHED_PORT" \
        --override-broadcast-host-port "127.0.0.1:$SCHED_PORT" \
        --healthz-port "$SCHED_HEALTHZ_PORT" --enable-metrics=false \
        --etcd-data-dir "$sched_dir/data" \
        --etcd-client-listen-address 127.0.0.1 --etcd-client-port "$SCHED_ETCD_CLIENT_PORT" \
        --etcd-initial-cluster "dapr-scheduler-server-0=http://127.0.0.1:$SCHED_ETCD_PEER_PORT" \
        --log-level "${SCHED_LOG_LEVEL:-info}"
}
scheduler_healthy() { curl -sf "http://127.0.0.1:$SCHED_HEALTHZ_PORT/healthz"; }
if pid=$(pid_of scheduler); then
    stack_say "scheduler already running (pid $pid)"
else
    for p in SCHED_PORT SCHED_HEALTHZ_PORT SCHED_ETCD_CLIENT_PORT SCHED_ETCD_PEER_PORT; do
        require_free_port "${!p}" scheduler "$p"
    done
    mkdir -p "$sched_dir"
    stack_say "starting dapr scheduler $DAPR_VERSION on 127.0.0.1:$SCHED_PORT (healthz *:$SCHED_HEALTHZ_PORT, etcd :$SCHED_ETCD_CLIENT_PORT/:$SCHED_ETCD_PEER_PORT)"
    start_scheduler
fi

# ---------- wait for readiness ----------
if ((kafka_started)); then
    WAIT_T0=$kafka_t0 wait_until kafka 120 grep -q "Kafka Server started" "$STACK_LOGS/kafka.log"
else
    wait_until kafka 60 tcp_open "$KAFKA_PORT"
fi
if [[ -z $sched_t0 ]]; then
    wait_until scheduler 60 scheduler_healthy
else
    WAIT_T0=$sched_t0 wait_restarting scheduler 60 start_scheduler scheduler_healthy
fi

stack_say "stack up in $(($(now_ms) - t_start)) ms:"
stack_say "  kafka      127.0.0.1:$KAFKA_PORT          (TASKHOST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT)"
stack_say "  postgres   $DATABASE_URL"
stack_say "  scheduler  127.0.0.1:$SCHED_PORT"
flock -u 8

if ((with_daprd)); then
    exec "$STACK_DIR/daprd.sh"
fi
if pid=$(pid_of daprd); then
    stack_say "daprd already running (pid $pid); restart it with daprd.sh stop && daprd.sh"
else
    stack_say "daprd is not started: run deploy/local-stack/daprd.sh --app-port $APP_PORT (or up.sh --with-daprd)"
fi
