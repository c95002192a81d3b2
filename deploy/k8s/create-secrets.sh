#!/usr/bin/env bash
# Create the Secrets taskhost's chart references, with random tokens, in one namespace.
# Existing Secrets are left alone (re-running never rotates a token under running pods).
#
# Usage: deploy/k8s/create-secrets.sh [-n NAMESPACE] (--database-url URL | --with-postgres)
#   --database-url URL  postgres://USER:PASSWORD@HOST:5432/DB of your database
#   --with-postgres     for deploy/k8s/postgres/postgres.yaml: a random password in Secret
#                       taskhost-postgres, and a database-url pointing at that server
# Makes:
#   taskhost             database-url, jwt-secret (64 hex), admin-token (48 hex)  -> secrets.existingSecret
#   taskhost-app-token   token (sidecar -> app, APP_API_TOKEN)                     -> dapr.appTokenSecret
#   taskhost-dapr-token  token (app -> sidecar, DAPR_API_TOKEN)                    -> dapr.apiTokenSecret
# Needs kubectl (on PATH, or the one deploy/k8s/install-tools.sh built) and openssl.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ns=default url="" pg=0
while (($#)); do
    case $1 in
        -n | --namespace) ns=${2:?-n needs a namespace}; shift 2 ;;
        --database-url) url=${2:?--database-url needs a URL}; shift 2 ;;
        --with-postgres) pg=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) k8s_die "unknown argument '$1' (see $0 --help)" ;;
    esac
done
[[ -n $url || $pg == 1 ]] || k8s_die "give --database-url URL or --with-postgres (see $0 --help)"
[[ -n $url && $pg == 1 ]] && k8s_die "--database-url and --with-postgres exclude each other"
kubectl=$(command -v kubectl || true)
[[ -x $K8S_BIN/kubectl ]] && kubectl=$K8S_BIN/kubectl
[[ -n $kubectl ]] || k8s_die "no kubectl: install one or run deploy/k8s/install-tools.sh control-plane"
command -v openssl >/dev/null || k8s_die "openssl is needed to make random tokens"
k() { "$kubectl" -n "$ns" "$@"; }
exists() { k get secret "$1" >/dev/null 2>&1; }
make_secret() {  # make_secret NAME KEY=VALUE...
    local name=$1; shift
    if exists "$name"; then k8s_say "secret $ns/$name exists: kept"; return; fi
    local args=() kv
    for kv in "$@"; do args+=(--from-literal="$kv"); done
    k create secret generic "$name" "${args[@]}" >/dev/null
    k8s_say "secret $ns/$name created (keys: $(printf '%s ' "${@%%=*}"))"
}

if ((pg)); then
    if exists taskhost-postgres; then
        password=$(k get secret taskhost-postgres -o jsonpath='{.data.password}' | base64 -d)
    else
        password=$(openssl rand -hex 24)
        make_secret taskhost-postgres "password=$password"
    fi
    url="postgres://taskhost:$password@taskhost-postgres:5432/taskhost"
fi
make_secret taskhost "database-url=$url" "jwt-secret=$(openssl rand -hex 32)" "admin-token=$(openssl rand -hex 24)"
make_secret taskhost-app-token "token=$(openssl rand -hex 32)"
make_secret taskhost-dapr-token "token=$(openssl rand -hex 32)"
k8s_say "use: --set secrets.existingSecret=taskhost --set dapr.appTokenSecret=taskhost-app-token --set dapr.apiTokenSecret=taskhost-dapr-token"
