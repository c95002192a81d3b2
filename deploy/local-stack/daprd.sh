#!/usr/bin/env bash
# Start a daprd sidecar for one app on 127.0.0.1, the way `dapr run` would, using the project's
# Dapr resources (deploy/dapr: pub/sub, resiliency, configuration) and the local scheduler.
#
# Usage: deploy/local-stack/daprd.sh [options] [-- extra daprd flags]
#        deploy/local-stack/daprd.sh stop
#   --app-id ID            default $APP_ID (taskhost)
#   --app-port PORT        port the app listens on at 127.0.0.1, default $APP_PORT (8080)
#   --resources-path DIR   default $DAPR_RESOURCES (deploy/dapr)
#   --config FILE          default $DAPR_CONFIG (<resources-path>/config.yaml)
#   --scheduler HOST:PORT  default $SCHED_ADDRESS (127.0.0.1:50006)
#   --foreground           exec daprd in this process (logs to stdout; the caller owns its lifetime)
#                          instead of starting it in the background (log + pid under $TASKHOST_STACK_RUN)
# APP_API_TOKEN (daprd -> app) and DAPR_API_TOKEN (app -> daprd) are passed to daprd when set.
# TASKHOST_KAFKA_BROKERS (read by pubsub-kafka.yaml through envRef) defaults to 127.0.0.1:$KAFKA_PORT,
# TASKHOST_KAFKA_VERSION (the Kafka protocol version daprd's client announces) to 3.9.0, what the
# Helm chart sets (kafka.protocolVersion); set it empty for Dapr's own default (2.0.0).
# Other settings: DAPR_HTTP_PORT, DAPR_GRPC_PORT, DAPR_INTERNAL_GRPC_PORT, DAPR_METRICS_PORT, DAPR_LOG_LEVEL.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

foreground=0
extra=()
if [[ ${1:-} == stop ]]; then
    stop_pid daprd
    exit 0
fi
config_set=0
while (($#)); do
    case $1 in
        --app-id) APP_ID=${2:?--app-id needs a value}; shift 2 ;;
        --app-port) APP_PORT=${2:?--app-port needs a value}; shift 2 ;;
        --resources-path) DAPR_RESOURCES=${2:?--resources-path needs a value}; shift 2 ;;
        --config) DAPR_CONFIG=${2:?--config needs a value}; config_set=1; shift 2 ;;
        --scheduler) SCHED_ADDRESS=${2:?--scheduler needs a value}; shift 2 ;;
        --foreground) foreground=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) stack_die "unknown argument '$1' (see $0 --help)" ;;
    esac
done
# a --resources-path given without --config takes the config.yaml found there
if ((!config_set)) && [[ ! -f $DAPR_CONFIG && -f $DAPR_RESOURCES/config.yaml ]]; then DAPR_CONFIG=$DAPR_RESOURCES/config.yaml; fi
[[ $APP_PORT =~ ^[0-9]+$ ]] || stack_die "--app-port must be a number, got '$APP_PORT'"
[[ -x $DAPR_BIN/daprd ]] || stack_die "no daprd in $DAPR_BIN: run deploy/local-stack/build-dapr.sh (or up.sh) first"
[[ -d $DAPR_RESOURCES ]] || stack_die "resources path $DAPR_RESOURCES is not a directory"
[[ -f $DAPR_CONFIG ]] || stack_die "Dapr configuration $DAPR_CONFIG not found"
DAPR_RESOURCES=$(cd "$DAPR_RESOURCES" && pwd)
DAPR_CONFIG=$(cd "$(dirname "$DAPR_CONFIG")" && pwd)/$(basename "$DAPR_CONFIG")
export TASKHOST_KAFKA_BROKERS=${TASKHOST_KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}
export TASKHOST_KAFKA_VERSION=${TASKHOST_KAFKA_VERSION-3.9.0}
# An empty token would make daprd/app compare against "": pass the variables only when non-empty.
for v in APP_API_TOKEN DAPR_API_TOKEN; do
    if [[ -n ${!v:-} ]]; then export "${v?}"; else unset "$v"; fi
done

if ((!foreground)) && pid=$(pid_of daprd); then
    stack_say "daprd already running (pid $pid): $(tr '\0' ' ' </proc/"$pid"/cmdline | grep -o -- '--app-id [^ ]* --app-port [^ ]*')"
    stack_say "stop it first with: $0 stop"
    exit 0
fi
for p in DAPR_HTTP_PORT DAPR_GRPC_PORT DAPR_INTERNAL_GRPC_PORT DAPR_METRICS_PORT; do
    require_free_port "${!p}" daprd "$p"
done
if [[ $SCHED_ADDRESS == 127.0.0.1:* ]] && ! tcp_open "${SCHED_ADDRESS#127.0.0.1:}"; then
    stack_warn "no scheduler answers at $SCHED_ADDRESS: the Jobs API will fail until it runs (deploy/local-stack/up.sh)"
fi
if ! tcp_open "${TASKHOST_KAFKA_BROKERS##*:}"; then
    stack_warn "nothing answers at $TASKHOST_KAFKA_BROKERS: pubsub-kafka will fail to initialise (deploy/local-stack/up.sh)"
fi

# Every listener on 127.0.0.1 (daprd's defaults include 0.0.0.0 for the internal gRPC and metrics
# ports); name resolution is set to `kubernetes` in config.yaml, so there is no mDNS traffic.
cmd=("$DAPR_BIN/daprd" --mode standalone --app-id "$APP_ID"
    --app-port "$APP_PORT" --app-protocol http --app-channel-address 127.0.0.1
    --dapr-listen-addresses 127.0.0.1 --dapr-http-port "$DAPR_HTTP_PORT" --dapr-grpc-port "$DAPR_GRPC_PORT"
    --dapr-internal-grpc-port "$DAPR_INTERNAL_GRPC_PORT" --dapr-internal-grpc-listen-address 127.0.0.1
    --metrics-listen-address 127.0.0.1 --metrics-port "$DAPR_METRICS_PORT"
    --resources-path "$DAPR_RESOURCES" --config "$DAPR_CONFIG"
    --scheduler-host-address "$SCHED_ADDRESS"
    # Health-check the app (liveness, /healthz — not /readyz, so a database outage still
    # reaches the app and is answered RETRY): while taskhost is down, daprd holds deliveries
    # instead of spending their retries and dead-lettering them.
    --enable-app-health-check --app-health-check-path /healthz
    --app-health-probe-interval 1 --app-health-threshold 1
    --log-level "$DAPR_LOG_LEVEL" "${extra[@]}")

stack_say "daprd $DAPR_VERSION: app $APP_ID at 127.0.0.1:$APP_PORT, http 127.0.0.1:$DAPR_HTTP_PORT, grpc :$DAPR_GRPC_PORT, metrics :$DAPR_METRICS_PORT"
stack_say "  resources $DAPR_RESOURCES, config $DAPR_CONFIG, scheduler $SCHED_ADDRESS, kafka $TASKHOST_KAFKA_BROKERS (protocol ${TASKHOST_KAFKA_VERSION:-empty: the Dapr default})"
is_set() { if [[ -n ${!1:-} ]]; then echo "set (value not shown)"; else echo unset; fi; }
stack_say "  APP_API_TOKEN $(is_set APP_API_TOKEN), DAPR_API_TOKEN $(is_set DAPR_API_TOKEN)"
if ((foreground)); then
    exec "${cmd[@]}"
fi
[[ -d $TASKHOST_STACK_RUN ]] || { mkdir -p "$TASKHOST_STACK_RUN" && chmod 755 "$TASKHOST_STACK_RUN"; }
start_daprd() { start_bg daprd "${cmd[@]}"; }
start_daprd
# outbound = sidecar and components ready; it does not need the app
wait_restarting daprd 90 start_daprd curl -sf -o /dev/null "http://127.0.0.1:$DAPR_HTTP_PORT/v1.0/healthz/outbound"
stack_say "daprd running (pid $(pid_of daprd)), log $STACK_LOGS/daprd.log; it reads GET /dapr/subscribe once the app answers on 127.0.0.1:$APP_PORT"
