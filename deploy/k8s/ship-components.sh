#!/usr/bin/env bash
# Ship a new version of taskhost's components to a running release, without a redeploy: write
# the .wasm files of DIR into the ConfigMap the pods mount as their components directory
# (components.source=configMap, components.configMap.name=NAME). The kubelet updates the mounted
# files in every running pod (within its sync period, ~1 min), and the host hot-swaps the
# components whose bytes changed. The ConfigMap before the change is kept as NAME-previous, so
# `ship-components.sh --rollback` puts it back.
#
# Usage: deploy/k8s/ship-components.sh [-n NAMESPACE] [--name NAME] DIR
#        deploy/k8s/ship-components.sh [-n NAMESPACE] [--name NAME] --rollback
#   DIR     a directory of *.wasm (e.g. target/components after `just build-components`)
#   NAME    default taskhost-components
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ns=default name=taskhost-components dir="" rollback=0
while (($#)); do
    case $1 in
        -n | --namespace) ns=${2:?-n needs a namespace}; shift 2 ;;
        --name) name=${2:?--name needs a ConfigMap name}; shift 2 ;;
        --rollback) rollback=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) k8s_die "unknown option '$1' (see $0 --help)" ;;
        *) dir=$1; shift ;;
    esac
done
kubectl=$(command -v kubectl || true)
[[ -x $K8S_BIN/kubectl ]] && kubectl=$K8S_BIN/kubectl
[[ -n $kubectl ]] || k8s_die "no kubectl: install one or run deploy/k8s/install-tools.sh control-plane"
k() { "$kubectl" -n "$ns" "$@"; }
# The ConfigMap's manifest with only what matters (drops uid, resourceVersion, managedFields)
# under another name.
renamed() { python3 -c '
import json, sys
cm = json.load(sys.stdin)
print(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": sys.argv[1], "labels": cm["metadata"].get("labels", {})},
                  "binaryData": cm.get("binaryData", {}), "data": cm.get("data", {})}))' "$1"; }

if ((rollback)); then
    k get configmap "$name-previous" >/dev/null 2>&1 || k8s_die "no $ns/$name-previous to roll back to"
    k get configmap "$name-previous" -o json | renamed "$name" | k apply --server-side --force-conflicts -f - >/dev/null
    k8s_say "configmap $ns/$name is back at the previous components"
    exit 0
fi
[[ -n $dir && -d $dir ]] || k8s_die "give a directory of .wasm files (see $0 --help)"
shopt -s nullglob
files=("$dir"/*.wasm)
((${#files[@]})) || k8s_die "no .wasm files in $dir"
size=$(cat "${files[@]}" | wc -c)
# A ConfigMap is at most 1 MiB; base64 makes the .wasm 4/3 larger.
((size * 4 / 3 < 1000000)) || k8s_die "the .wasm files of $dir are $size bytes: too large for one ConfigMap (1 MiB with base64); ship them in the image instead (components.source=image)"
if k get configmap "$name" >/dev/null 2>&1; then
    k get configmap "$name" -o json | renamed "$name-previous" | k apply --server-side --force-conflicts -f - >/dev/null
fi
from=()
for f in "${files[@]}"; do from+=(--from-file="$(basename "$f")=$f"); done
# ConfigMap: files that are not valid UTF-8 (every .wasm) land in binaryData.
k create configmap "$name" "${from[@]}" --dry-run=client -o json |
    python3 -c 'import json,sys; cm=json.load(sys.stdin); cm["metadata"]["labels"]={"app.kubernetes.io/part-of":"taskhost","app.kubernetes.io/component":"components"}; print(json.dumps(cm))' |
    k apply --server-side --force-conflicts -f - >/dev/null
k8s_say "configmap $ns/$name: $(for f in "${files[@]}"; do printf '%s=%s ' "$(basename "$f")" "$(sha256sum "$f" | cut -c1-12)"; done)"
k8s_say "running pods see the new files within about a minute; check with: kubectl -n $ns logs deploy/<release> -c taskhost | grep -i swap"
