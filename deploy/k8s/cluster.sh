#!/usr/bin/env bash
# A throwaway Kubernetes cluster on 127.0.0.1 from the binaries install-tools.sh built: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler as real processes (kwokctl's "binary"
# runtime), plus kwok-controller, which plays the kubelet of fake nodes: pods are scheduled,
# bound and reported Running/Ready, but no container runs.
#
# Usage: deploy/k8s/cluster.sh up [NODES]   # default 2 nodes; prints the kubeconfig path
#        deploy/k8s/cluster.sh down          # stop every process, delete $K8S_RUN
#        deploy/k8s/cluster.sh status
# kubeconfig: $KUBECONFIG_FILE (default /tmp/taskhost-k8s/kubeconfig); ~/.kube/config is never touched.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

export KWOK_WORKDIR=$K8S_RUN/kwok
export KUBECONFIG=$KUBECONFIG_FILE
kwokctl=$K8S_BIN/kwokctl
kubectl=$K8S_BIN/kubectl

need_tools() {
    local b
    for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwokctl; do
        [[ -x $K8S_BIN/$b ]] || k8s_die "no $b in $K8S_BIN: run deploy/k8s/install-tools.sh"
    done
}

up() {
    local nodes=${1:-2} t0 i
    [[ $nodes =~ ^[1-9][0-9]?$ ]] || k8s_die "NODES must be 1-99, got '$nodes'"
    need_tools
    t0=$(now_ms)
    if [[ -f $KUBECONFIG ]] && "$kubectl" get --raw /readyz >/dev/null 2>&1; then
        k8s_say "cluster $KWOK_CLUSTER already up ($KUBECONFIG)"
    else
        rm -rf "$K8S_RUN"
        mkdir -p "$KWOK_WORKDIR"
        # kwokctl binds 0.0.0.0 unless told otherwise
        cat >"$K8S_RUN/kwokctl.yaml" <<'EOF'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
EOF
        # --*-binary: local files, so kwokctl downloads nothing
        "$kwokctl" --name "$KWOK_CLUSTER" -c "$K8S_RUN/kwokctl.yaml" create cluster --runtime binary \
            --kubeconfig "$KUBECONFIG" \
            --etcd-binary "$K8S_BIN/etcd" --kube-apiserver-binary "$K8S_BIN/kube-apiserver" \
            --kube-controller-manager-binary "$K8S_BIN/kube-controller-manager" \
            --kube-scheduler-binary "$K8S_BIN/kube-scheduler" --kwok-controller-binary "$K8S_BIN/kwok" \
            --wait 120s >"$K8S_RUN/kwokctl-create.log" 2>&1 ||
            { tail -n 30 "$K8S_RUN/kwokctl-create.log" >&2; k8s_die "kwokctl create cluster failed (log: $K8S_RUN/kwokctl-create.log)"; }
    fi
    for ((i = 0; i < nodes; i++)); do
        cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "16", memory: 64Gi, pods: "110"}
  capacity: {cpu: "16", memory: 64Gi, pods: "110"}
EOF
    done | "$kubectl" apply -f - >/dev/null
    "$kubectl" wait --for=condition=Ready node --all --timeout=60s >/dev/null ||
        k8s_die "the kwok nodes did not become Ready"
    # every process of the cluster listens on loopback only
    local f pid addrs open=""
    for f in "$KWOK_WORKDIR/clusters/$KWOK_CLUSTER/pids"/*.pid; do
        pid=$(<"$f")
        addrs=$(ss -Hltnp 2>/dev/null | grep "pid=$pid," | awk '{print $4}' | sort -u | tr '\n' ' ')
        open+="$(basename "$f" .pid) ${addrs% }; "
        if [[ -n ${addrs// /} ]] && grep -qvE '^(127\.0\.0\.1|\[::1\]):' <<<"$(tr ' ' '\n' <<<"$addrs" | sed '/^$/d')"; then
            k8s_die "$(basename "$f" .pid) listens beyond loopback: $addrs"
        fi
    done
    k8s_say "listening (loopback only): ${open%; }"
    k8s_say "cluster up in $(secs_since "$t0") s: $("$kubectl" version -o json | python3 -c 'import json,sys; print("server", json.load(sys.stdin)["serverVersion"]["gitVersion"])'), $nodes kwok nodes; KUBECONFIG=$KUBECONFIG"
}

down() {
    local t0; t0=$(now_ms)
    if [[ -x $kwokctl && -d $KWOK_WORKDIR/clusters/$KWOK_CLUSTER ]]; then
        "$kwokctl" --name "$KWOK_CLUSTER" delete cluster --kubeconfig "$KUBECONFIG" >"$K8S_RUN/kwokctl-delete.log" 2>&1 ||
            k8s_warn "kwokctl delete cluster failed (log: $K8S_RUN/kwokctl-delete.log)"
    fi
    case $K8S_RUN in / | "$HOME" | /tmp | "") k8s_die "refusing to delete K8S_RUN=$K8S_RUN" ;; esac
    rm -rf "$K8S_RUN"
    k8s_say "cluster down in $(secs_since "$t0") s"
}

case ${1:-} in
    up) shift; up "$@" ;;
    down) down ;;
    status)
        if [[ -f $KUBECONFIG ]] && "$kubectl" get --raw /readyz >/dev/null 2>&1; then
            "$kubectl" get nodes
        else
            echo "no cluster answers ($KUBECONFIG)"; exit 1
        fi ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' ;;
    *) k8s_die "usage: $0 up [NODES] | down | status" ;;
esac
