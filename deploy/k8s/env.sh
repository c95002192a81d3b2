# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this file
# Settings of taskhost's Kubernetes tooling: versions, paths, ports. Every value can be
# overridden from the environment. Source it: . deploy/k8s/env.sh
#
# Everything is built from the package registries (Go module proxy, PyPI, Maven Central, Debian)
# once, into $K8S_CACHE, and reused: see deploy/README.md ("The test, and what it proves").

K8S_SCRIPTS=${K8S_SCRIPTS:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}   # deploy/k8s
TASKHOST_REPO=${TASKHOST_REPO:-$(cd "$K8S_SCRIPTS/../.." && pwd)}
CHART_DIR=${CHART_DIR:-$TASKHOST_REPO/deploy/helm/taskhost}
TASKHOST_CACHE=${TASKHOST_CACHE:-$HOME/.cache/taskhost}

# --- versions (each one pinned; changing one rebuilds only what depends on it) ---
K8S_VERSION=${K8S_VERSION:-1.35.4}            # kube-apiserver, controller-manager, scheduler, kubectl, core schemas
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
KUBECONFORM_VERSION=${KUBECONFORM_VERSION:-v0.8.0}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}       # github.com/google/go-containerregistry/cmd/crane
DAPR_CRD_VERSION=${DAPR_CRD_VERSION:-1.18.0}  # the Dapr the local stack runs (deploy/local-stack)
STRIMZI_API_VERSIONS=${STRIMZI_API_VERSIONS:-"0.51.0 1.2.0"}   # io.strimzi:api: 0.51 serves v1beta2+v1, 1.x only v1
STRIMZI_GEN_VERSION=${STRIMZI_GEN_VERSION:-1.2.0}              # io.strimzi:crd-generator (needs Java >= 21)
OPENAPI2JSONSCHEMA_VERSION=${OPENAPI2JSONSCHEMA_VERSION:-0.9.1}
PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-0.85.0}  # monitoring.coreos.com CRDs (chart's observability.*)

# --- where builds live (kept between runs) ---
K8S_CACHE=${K8S_CACHE:-$TASKHOST_CACHE/k8s}
K8S_BIN=${K8S_BIN:-$K8S_CACHE/bin}
K8S_GOCACHE=${K8S_GOCACHE:-$TASKHOST_CACHE/k8s-go-build}
SCHEMAS=${SCHEMAS:-$K8S_CACHE/schemas}        # kubeconform schemas + CRD YAMLs
K8S_VENV=${K8S_VENV:-$K8S_CACHE/venv}
JAVA21=${JAVA21:-}                            # a java >= 21 for Strimzi's crd-generator; found if empty

# --- the throwaway cluster (state thrown away by cluster.sh down) ---
K8S_RUN=${K8S_RUN:-/tmp/taskhost-k8s}
KWOK_CLUSTER=${KWOK_CLUSTER:-taskhost}
KUBECONFIG_FILE=${KUBECONFIG_FILE:-$K8S_RUN/kubeconfig}

# --- the image (built without Docker) ---
IMAGE_DIR=${IMAGE_DIR:-$TASKHOST_CACHE/image}
IMAGE_NAME=${IMAGE_NAME:-taskhost}
TARGET_DIR=${CARGO_TARGET_DIR:-$TASKHOST_REPO/target}   # cargo's, as the justfile uses it

export GOFLAGS=${GOFLAGS:--buildvcs=false}

# ---------- helpers ----------
k8s_say() { printf '[k8s] %s\n' "$*"; }
k8s_warn() { printf '[k8s] warning: %s\n' "$*" >&2; }
k8s_die() { printf '[k8s] ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
# secs_since T0_MS: "12.3" seconds since T0_MS
secs_since() { local d=$(($(now_ms) - $1)); printf '%d.%d' $((d / 1000)) $((d % 1000 / 100)); }
# go_mod_dir MODULE@VERSION: the unpacked module directory (downloaded through the module proxy).
go_mod_dir() {
    local json
    json=$(go mod download -json "$1") || k8s_die "go mod download $1 failed: $json"
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json"
}
