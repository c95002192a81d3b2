# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this file
# Settings of taskhost's local stack: versions, ports, paths. Every value can be overridden
# from the environment. Source it: . deploy/local-stack/env.sh
# Everything listens on 127.0.0.1 only (except the scheduler's healthz port, see README.md, G7).

STACK_DIR=${STACK_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}   # deploy/local-stack
TASKHOST_REPO=${TASKHOST_REPO:-$(cd "$STACK_DIR/../.." && pwd)}

# Run-time state (data dirs, pid files, logs): thrown away with `down.sh --purge`.
TASKHOST_STACK_RUN=${TASKHOST_STACK_RUN:-/tmp/taskhost-stack}
STACK_LOGS=$TASKHOST_STACK_RUN/logs
# Builds and downloads, kept between runs: dapr source+binaries, Go build cache, Kafka jars.
TASKHOST_CACHE=${TASKHOST_CACHE:-$HOME/.cache/taskhost}

# --- Dapr (daprd + scheduler, built from the Go module proxy) ---
DAPR_VERSION=${DAPR_VERSION:-1.18.0}
# The tag's commit, for `daprd --version` (the module proxy's .info has none for v1.18.0).
case $DAPR_VERSION in
    1.18.0) DAPR_COMMIT=${DAPR_COMMIT:-7c4f540efa3e6f768a45010f2fc0d4b4c287cac3} ;;
    1.16.5) DAPR_COMMIT=${DAPR_COMMIT:-f167add0ab641afa210d61771820d0d178bc41ae} ;;
    *) DAPR_COMMIT=${DAPR_COMMIT:-unknown} ;;
esac
DAPR_CACHE=${DAPR_CACHE:-$TASKHOST_CACHE/dapr-$DAPR_VERSION}           # src/ (module copy) and bin/
DAPR_BIN=${DAPR_BIN:-$DAPR_CACHE/bin}
DAPR_GOCACHE=${DAPR_GOCACHE:-$TASKHOST_CACHE/dapr-go-build}

# --- Kafka (KRaft, one combined broker+controller, jars from Maven Central) ---
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_LIBS=${KAFKA_LIBS:-$TASKHOST_CACHE/kafka-$KAFKA_VERSION/libs}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_HEAP=${KAFKA_HEAP:--Xms32m -Xmx128m}
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=32m -XX:MaxMetaspaceSize=96m -Xss512k}

# --- PostgreSQL (Debian binaries; as root the server runs as the `postgres` user) ---
PG_VERSION=${PG_VERSION:-15}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/$PG_VERSION/bin}
PG_PORT=${PG_PORT:-54329}
PG_OS_USER=${PG_OS_USER:-postgres}
PG_DB=${PG_DB:-taskhost}
PG_PASSWORD=${PG_PASSWORD:-postgres}
PG_DIR=$TASKHOST_STACK_RUN/pg            # owned by $PG_OS_USER: data/, postgres.log, unix socket
DATABASE_URL=${DATABASE_URL:-postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB}

# --- Dapr scheduler (Jobs API; embedded etcd) ---
SCHED_PORT=${SCHED_PORT:-50006}
SCHED_HEALTHZ_PORT=${SCHED_HEALTHZ_PORT:-18081}
SCHED_ETCD_CLIENT_PORT=${SCHED_ETCD_CLIENT_PORT:-12379}
SCHED_ETCD_PEER_PORT=${SCHED_ETCD_PEER_PORT:-12380}
SCHED_ADDRESS=${SCHED_ADDRESS:-127.0.0.1:$SCHED_PORT}

# --- daprd (the sidecar of one app) ---
APP_ID=${APP_ID:-taskhost}
APP_PORT=${APP_PORT:-8080}
DAPR_HTTP_PORT=${DAPR_HTTP_PORT:-3500}
DAPR_GRPC_PORT=${DAPR_GRPC_PORT:-50001}
DAPR_INTERNAL_GRPC_PORT=${DAPR_INTERNAL_GRPC_PORT:-50002}
DAPR_METRICS_PORT=${DAPR_METRICS_PORT:-59091}
DAPR_RESOURCES=${DAPR_RESOURCES:-$TASKHOST_REPO/deploy/dapr}
DAPR_CONFIG=${DAPR_CONFIG:-$DAPR_RESOURCES/config.yaml}
DAPR_LOG_LEVEL=${DAPR_LOG_LEVEL:-info}

export TASKHOST_STACK_RUN TASKHOST_CACHE DATABASE_URL APP_ID APP_PORT DAPR_HTTP_PORT DAPR_GRPC_PORT

# ---------- helpers for the scripts ----------
stack_say() { printf '[stack] %s\n' "$*"; }
stack_warn() { printf '[stack] warning: %s\n' "$*" >&2; }
stack_die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }
# stack_lock: take the stack's lock on fd 8, so that up.sh and down.sh never run at once. Waits
# at most STACK_LOCK_WAIT_S (300) seconds, then fails naming the processes that hold it: a wait
# without end is what a caller's cleanup can least afford.
stack_lock() {
    local wait_s=${STACK_LOCK_WAIT_S:-300}
    exec 8>"$TASKHOST_STACK_RUN/.lock"
    flock -n 8 && return 0
    stack_say "another up.sh/down.sh is running; waiting for it (at most $wait_s s)"
    flock -w "$wait_s" 8 ||
        stack_die "$TASKHOST_STACK_RUN/.lock is still held after $wait_s s by: $(lock_holders)"
}
# lock_holders: the processes (other than this shell) with the stack's lock file open.
lock_holders() {
    local fd pid
    for fd in /proc/[0-9]*/fd/*; do
        [[ $(readlink "$fd" 2>/dev/null) == "$TASKHOST_STACK_RUN/.lock" ]] || continue
        pid=${fd#/proc/}; pid=${pid%%/*}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        printf '%s (%s); ' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-100)"
    done | sort -u
}
now_ms() { date +%s%3N; }
# pid_of NAME: the pid recorded in $TASKHOST_STACK_RUN/NAME.pid, if that process still runs.
pid_of() {
    local f=$TASKHOST_STACK_RUN/$1.pid pid
    [[ -f $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}
pid_alive() { pid_of "$1" >/dev/null; }
# port_holder PORT: the `ss` line of whatever listens on TCP PORT (any address); empty if free.
port_holder() { ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1; }
# require_free_port PORT WHAT VAR: fail loudly when PORT is taken by something that is not ours.
require_free_port() {
    local holder; holder=$(port_holder "$1")
    [[ -z $holder ]] || stack_die "$2 cannot start: TCP port $1 is already in use ($holder). Stop that process or choose another port with $3=..."
}
# tcp_open PORT: does 127.0.0.1:PORT accept a connection?
tcp_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
# wait_until NAME TIMEOUT_S CMD...: poll CMD every 0.1 s; fail loudly if the process of NAME dies or time runs out.
# The time printed counts from $WAIT_T0 (ms, e.g. the launch) when set, else from the call.
# With WAIT_EXIT_OK=1, a process that exits during start-up is a warning and a return of 1 (the
# caller may start it again: wait_restarting), not the end of the script.
wait_until() {
    local name=$1 timeout=$2 t0 i; shift 2; t0=${WAIT_T0:-$(now_ms)}
    for ((i = 0; i < timeout * 10; i++)); do
        if "$@" >/dev/null 2>&1; then stack_say "$name ready after $(($(now_ms) - t0)) ms"; return 0; fi
        if [[ -f $TASKHOST_STACK_RUN/$name.pid ]] && ! pid_alive "$name"; then
            tail -n 30 "$STACK_LOGS/$name.log" >&2 2>/dev/null
            local exited="$name exited during start-up (last lines above); full log: $STACK_LOGS/$name.log"
            if [[ ${WAIT_EXIT_OK:-} == 1 ]]; then stack_warn "$exited"; return 1; fi
            stack_die "$exited"
        fi
        sleep 0.1
    done
    tail -n 30 "$STACK_LOGS/$name.log" >&2 2>/dev/null
    stack_die "$name not ready after ${timeout}s (last lines above); full log: $STACK_LOGS/$name.log"
}
# wait_restarting NAME TIMEOUT_S RESTART_FN READY_CMD...: wait_until NAME is ready (it has just been
# started). A fixed port in Linux's ephemeral range (32768-60999: Dapr's defaults 50001, 50002, 50006
# are) can be the local end of some client's connection at the moment a server binds it, which
# the free-port check (listeners only) cannot see: when NAME exits with "address already in use",
# RESTART_FN starts it again, up to 3 attempts in all. Any other failure fails at once.
wait_restarting() {
    local name=$1 timeout=$2 restart=$3 attempt; shift 3
    for attempt in 1 2 3; do
        WAIT_EXIT_OK=1 wait_until "$name" "$timeout" "$@" && return 0
        if ((attempt == 3)) || ! grep -q 'address already in use' "$STACK_LOGS/$name.log" 2>/dev/null; then
            stack_die "$name did not start (attempt $attempt; see above)"
        fi
        cp "$STACK_LOGS/$name.log" "$STACK_LOGS/$name.attempt-$attempt.log"
        stack_warn "a port $name binds was taken as it started (attempt $attempt, above); starting it again in 2 s"
        sleep 2
        WAIT_T0=$(now_ms)
        "$restart"
    done
}
# start_bg NAME CMD...: start CMD detached in its own session, output to $STACK_LOGS/NAME.log, pid to NAME.pid.
start_bg() {
    local name=$1; shift
    mkdir -p "$STACK_LOGS"
    # 8>&-: up.sh holds its lock on fd 8; a child that kept it would hold the lock for as long as
    # it runs, and the next down.sh would wait for it forever.
    setsid "$@" >"$STACK_LOGS/$name.log" 2>&1 </dev/null 8>&- &
    echo $! >"$TASKHOST_STACK_RUN/$name.pid"
}
# stop_pid NAME: SIGTERM the recorded process, SIGKILL after 30 s; remove the pid file.
stop_pid() {
    local name=$1 pid i
    if pid=$(pid_of "$name"); then
        stack_say "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            stack_warn "$name (pid $pid) still running after 30 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$TASKHOST_STACK_RUN/$name.pid"
}
