#!/usr/bin/env bash
# Stop everything up.sh / daprd.sh started (daprd, scheduler, Kafka by their recorded pids;
# PostgreSQL with pg_ctl). Idempotent. Data stays for the next start unless --purge.
# Usage: deploy/local-stack/down.sh [--purge]
#   --purge   also delete $TASKHOST_STACK_RUN (Kafka topics, database, scheduled jobs, logs).
#             Builds and downloads in ~/.cache/taskhost are kept.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

purge=0
case ${1:-} in
    --purge) purge=1 ;;
    "") ;;
    *) stack_die "usage: $0 [--purge]" ;;
esac
if [[ ! -d $TASKHOST_STACK_RUN ]]; then
    stack_say "nothing to stop: $TASKHOST_STACK_RUN does not exist"
    exit 0
fi
stack_lock

stop_pid daprd          # first, so that it stops consuming before Kafka goes away
stop_pid scheduler
stop_pid kafka
if [[ -f $PG_DIR/data/postmaster.pid ]]; then
    pg_ctl=$PG_BIN/pg_ctl
    [[ -x $pg_ctl ]] || pg_ctl=$(find /usr/lib/postgresql/*/bin -maxdepth 1 -name pg_ctl 2>/dev/null | sort -V | tail -n 1)
    stack_say "stopping postgres"
    if ((EUID == 0)); then
        (cd / && runuser -u "$PG_OS_USER" -- "$pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null)
    else
        (cd / && "$pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null)
    fi || stack_warn "pg_ctl stop failed; see $PG_DIR/postgres.log"
fi
stack_say "stack stopped"

if ((purge)); then
    case $TASKHOST_STACK_RUN in
        / | "$HOME" | /tmp | "") stack_die "refusing to delete TASKHOST_STACK_RUN=$TASKHOST_STACK_RUN" ;;
    esac
    rm -rf "$TASKHOST_STACK_RUN"
    stack_say "purged $TASKHOST_STACK_RUN"
fi
