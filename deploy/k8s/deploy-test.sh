#!/usr/bin/env bash
# `just deploy-test`: taskhost's Kubernetes deployment, checked offline and against a real
# control plane on 127.0.0.1. Every stage says what it checked and how long it took; any failure
# stops the run with the reason. What it proves, and what it cannot, is in deploy/README.md.
#
#   tools     install-tools.sh: helm, kubeconform, kwok, crane, etcd, the control plane, schemas (cached)
#   image     build-image.sh: static host + components as an OCI image without Docker, checked by running it
#   cm-swap   check-configmap-swap.sh: the image's binary hot-swaps a component replaced by a rename,
#             and one changed by a kubelet-style ConfigMap volume update (`..data` switched)
#   identity  the chart's Dapr files are deploy/dapr's, byte for byte (packaged chart and rendered output)
#   lint      helm lint --strict
#   schemas   helm template | kubeconform -strict (Kubernetes, Dapr and Strimzi schemas), no network;
#             deploy/dapr, deploy/k8s/strimzi and deploy/k8s/postgres too
#   broken    wrong values fail with a readable message
#   sidecars  check-sidecars.sh: the chart's Dapr resources in two real daprd 1.18.0 with Kafka 4.4.0
#   cluster   kube-apiserver + etcd + controller-manager + scheduler + kwok nodes; Dapr + Strimzi CRDs
#   dry-run   kubectl apply --server-side --dry-run=server of every object (warnings are errors: Pod Security "restricted")
#   install   helm install --wait: Deployment Available, every pod Running
#   inject    Dapr's own injector code on the chart's pod: rejected by "restricted" with Dapr's
#             defaults, accepted and Running with sidecarDropALLCapabilities=true
#   upgrade   helm upgrade to a new component version + image: a new ReplicaSet rolls out
#   rollback  helm rollback: the previous components and image are back, rolled out
#   hot-swap  a component change with restartPodsOnChange=false: the ConfigMap changes, no pod restarts;
#             ship-components.sh updates (and rolls back) a ConfigMap outside helm
#
# Usage: deploy/k8s/deploy-test.sh [--keep]   (--keep leaves the cluster up; cluster.sh down stops it)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

keep=0
case ${1:-} in
    --keep) keep=1 ;;
    "") ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) k8s_die "unknown argument '$1' (see $0 --help)" ;;
esac

helm=$K8S_BIN/helm kubeconform=$K8S_BIN/kubeconform kubectl=$K8S_BIN/kubectl
ns=taskhost-test rel=taskhost
work=$K8S_RUN-test
rm -rf "$work"; mkdir -p "$work"
export KUBECONFIG=$KUBECONFIG_FILE
# helm keeps its cache/config under $work, away from ~/.config/helm
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data
t_start=$(now_ms)
timings=()
stage_t0=
stage() {  # stage NAME: close the previous stage's timing, open NAME's
    [[ -n $stage_t0 ]] && timings+=("$(printf '%-9s %6s s' "$stage_name" "$(secs_since "$stage_t0")")")
    stage_name=$1 stage_t0=$(now_ms)
    printf '\n== %s ==\n' "$1"
}
ok() { printf '  ok  %s\n' "$*"; }
fail() { printf '  FAIL %s\n' "$*" >&2; exit 1; }
# The symbolic link files/dapr -> deploy/dapr makes helm log one line per command; drop it.
h() { "$helm" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }
k() { "$kubectl" "$@"; }
cleanup() {
    local rc=$?
    if ((keep)); then
        k8s_say "--keep: the cluster stays up (KUBECONFIG=$KUBECONFIG; stop it with deploy/k8s/cluster.sh down)"
    else
        "$K8S_SCRIPTS/cluster.sh" down >/dev/null 2>&1 || true
    fi
    # the work dir (renders, logs) is kept when something failed
    if ((rc == 0 && !keep)); then rm -rf "$work"; else k8s_say "logs and renders: $work"; fi
    exit "$rc"
}
trap cleanup EXIT

# --- the values every render and install starts from (the required Secret names) ---
base=(--namespace "$ns"
    --set image.repository=localhost/taskhost
    --set secrets.existingSecret=taskhost
    --set dapr.appTokenSecret=taskhost-app-token --set dapr.apiTokenSecret=taskhost-dapr-token)
# a second shape of the chart: components from a ConfigMap the chart renders, HPA on
variant=(--set components.source=configMap --set autoscaling.enabled=true)
# a third: the optional observability resources and traces on
observability=(--set observability.grafanaDashboard.enabled=true --set observability.prometheusRule.enabled=true
    --set observability.serviceMonitor.enabled=true --set observability.traces.otlpEndpoint=http://otel-collector.observability.svc:4318)

# ======================================================================================
stage tools
"$K8S_SCRIPTS/install-tools.sh"
unshare_n=()
if unshare -n true 2>/dev/null; then unshare_n=(unshare -n); fi

# ======================================================================================
stage image
"$K8S_SCRIPTS/build-image.sh"
comp_dir=$IMAGE_DIR/work/check/rootfs/opt/taskhost/components
# A "new version" of sync for the upgrade: the same component plus a custom section, so its bytes
# (and checksum) differ while it stays a valid component — checked with the image's own binary.
mkdir -p "$work/v1" "$work/v2"
cp "$comp_dir"/*.wasm "$work/v1/"
cp "$comp_dir"/*.wasm "$work/v2/"
python3 - "$work/v2/sync.wasm" <<'PY'
import sys
def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7f; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)
name, payload = b"taskhost-deploy-test", b"sync v2: a new component version for helm upgrade"
body = leb(len(name)) + name + payload
open(sys.argv[1], "ab").write(b"\x00" + leb(len(body)) + body)
PY
"$IMAGE_DIR/work/check/rootfs/usr/local/bin/taskhost" invoke "$work/v2/sync.wasm" --topic task-events \
    --event "$IMAGE_DIR/work/check/rootfs/tmp/event.json" --now 2027-01-31T10:00:00Z --no-cache >/dev/null ||
    fail "the v2 sync component does not load"
sha() { sha256sum "$1" | cut -c1-16; }
ok "sync v1 $(sha "$work/v1/sync.wasm"), v2 $(sha "$work/v2/sync.wasm") (v2 loads and runs)"
files_args() {  # files_args DIR: --set-file for each component of DIR, as base64
    local f n
    for f in "$1"/*.wasm; do
        n=$(basename "$f" .wasm)
        base64 -w0 "$f" >"$f.b64"
        printf -- '--set-file\ncomponents.configMap.files.%s=%s\n' "$n" "$f.b64"
    done
}
mapfile -t files_v1 < <(files_args "$work/v1")
mapfile -t files_v2 < <(files_args "$work/v2")

# ======================================================================================
stage cm-swap
# Fake nodes have no kubelet, so the ConfigMap volume's update is reproduced around the image's
# binary (check-configmap-swap.sh): sync.wasm replaced by a rename (the way the host documents),
# then the kubelet's way (a new hidden directory, `..data` renamed over): both must hot-swap.
bin=$IMAGE_DIR/work/check/rootfs/usr/local/bin/taskhost
"$K8S_SCRIPTS/check-configmap-swap.sh" "$bin" "$work/v1" "$work/v2/sync.wasm" --rename | sed 's/^\[k8s\]/  ok /'
"$K8S_SCRIPTS/check-configmap-swap.sh" "$bin" "$work/v1" "$work/v2/sync.wasm" | sed 's/^\[k8s\]/  ok /'

# ======================================================================================
stage identity
# 1. what `helm package` ships: files/dapr/* in the chart archive = deploy/dapr/*
h package "$CHART_DIR" -d "$work/pkg" >/dev/null
mkdir -p "$work/pkg/x"
tar --warning=no-timestamp -xzf "$work/pkg"/taskhost-*.tgz -C "$work/pkg/x"
n=0
for f in "$TASKHOST_REPO"/deploy/dapr/*.yaml; do
    cmp -s "$f" "$work/pkg/x/taskhost/files/dapr/$(basename "$f")" ||
        fail "the packaged chart's files/dapr/$(basename "$f") differs from deploy/dapr/$(basename "$f")"
    n=$((n + 1))
done
extra=$(cd "$work/pkg/x/taskhost/files/dapr" && for f in *.yaml; do [[ -f $TASKHOST_REPO/deploy/dapr/$f ]] || echo "$f"; done)
[[ -z $extra ]] || fail "the chart ships Dapr files that deploy/dapr does not have: $extra"
# 2. what `helm template/install` renders: each document of dapr-resources.yaml is one file, unchanged
h template "$rel" "$CHART_DIR" --kube-version "$K8S_VERSION" "${base[@]}" --show-only templates/dapr-resources.yaml >"$work/dapr-rendered.yaml"
python3 - "$work/dapr-rendered.yaml" "$TASKHOST_REPO/deploy/dapr" <<'PY' || fail "the rendered Dapr resources are not deploy/dapr's files"
import glob, os, sys
out = open(sys.argv[1], "rb").read()
docs = out.split(b"---\n# Source: taskhost/templates/dapr-resources.yaml\n")
assert docs[0] == b"", docs[0][:80]
files = {os.path.basename(p): open(p, "rb").read() for p in glob.glob(os.path.join(sys.argv[2], "*.yaml"))}
seen = []
for d in docs[1:]:
    match = [n for n, c in files.items() if c == d]
    if not match:
        sys.exit(f"a rendered document matches no file byte for byte:\n{d[:300].decode()}")
    seen += match
if sorted(seen) != sorted(files):
    sys.exit(f"rendered {sorted(seen)}, deploy/dapr has {sorted(files)}")
print("  ok  rendered == deploy/dapr, byte for byte: " + " ".join(sorted(seen)))
PY
ok "packaged chart: files/dapr/*.yaml == deploy/dapr/*.yaml ($n files, cmp)"

# ======================================================================================
stage lint
h lint --strict "$CHART_DIR" --kube-version "$K8S_VERSION" "${base[@]}" >"$work/lint.log" || { cat "$work/lint.log"; fail "helm lint --strict"; }
h lint --strict "$CHART_DIR" --kube-version "$K8S_VERSION" "${base[@]}" "${variant[@]}" "${files_v1[@]}" >"$work/lint2.log" ||
    { cat "$work/lint2.log"; fail "helm lint --strict (configMap + HPA)"; }
ok "helm lint --strict: $(grep -c 'chart(s) linted, 0 chart(s) failed' "$work/lint.log" "$work/lint2.log" | awk -F: '{s+=$2} END {print s}') of 2 value sets clean"

# ======================================================================================
stage schemas
kc=("$kubeconform" -strict -summary -kubernetes-version "$K8S_VERSION"
    -schema-location "$SCHEMAS/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json"
    -schema-location "$SCHEMAS/crds/dapr-$DAPR_CRD_VERSION/{{.ResourceKind}}{{.KindSuffix}}.json")
read -r -a strimzi_versions <<<"$STRIMZI_API_VERSIONS"
h template "$rel" "$CHART_DIR" --kube-version "$K8S_VERSION" "${base[@]}" >"$work/render-default.yaml"
h template "$rel" "$CHART_DIR" --kube-version "$K8S_VERSION" "${base[@]}" "${variant[@]}" "${files_v1[@]}" >"$work/render-variant.yaml"
# no network at all while validating (unshare -n), when the kernel lets us
"${unshare_n[@]}" "${kc[@]}" "$work/render-default.yaml" "$work/render-variant.yaml" "$TASKHOST_REPO"/deploy/dapr/*.yaml \
    "$K8S_SCRIPTS"/postgres/*.yaml | tail -n 1 | sed 's/^/  ok  chart + deploy\/dapr + postgres: /'
for sv in "${strimzi_versions[@]}"; do
    "${unshare_n[@]}" "${kc[@]}" -schema-location "$SCHEMAS/crds/strimzi-$sv/{{.ResourceKind}}{{.KindSuffix}}.json" \
        "$K8S_SCRIPTS"/strimzi/*.yaml "$K8S_SCRIPTS"/strimzi/local/*.yaml | tail -n 1 | sed "s/^/  ok  Strimzi (CRDs of $sv): /"
done
# the optional observability resources (Grafana dashboard ConfigMap, PrometheusRule, ServiceMonitor)
h template "$rel" "$CHART_DIR" --kube-version "$K8S_VERSION" "${base[@]}" "${observability[@]}" >"$work/render-observability.yaml"
"${unshare_n[@]}" "${kc[@]}" -schema-location "$SCHEMAS/crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION/{{.ResourceKind}}{{.KindSuffix}}.json" \
    "$work/render-observability.yaml" | tail -n 1 | sed 's/^/  ok  chart with observability.* (prometheus-operator CRDs): /'
kinds=$(cat "$work/render-default.yaml" "$work/render-variant.yaml" "$work/render-observability.yaml" | sed -n 's/^kind: //p' | sort -u | tr '\n' ' ')
ok "kinds rendered: $kinds${unshare_n:+(validated with no network: unshare -n)}"

# ======================================================================================
stage broken
# expect_fail WHAT PATTERN ARGS...: `helm template ARGS` must fail and say PATTERN
expect_fail() {
    local what=$1 pattern=$2 out; shift 2
    if out=$("$helm" template "$rel" "$CHART_DIR" --namespace "$ns" "$@" 2>&1 >/dev/null); then
        fail "$what: helm accepted it"
    fi
    grep -qF -- "$pattern" <<<"$out" || { printf '%s\n' "$out" >&2; fail "$what: the message does not say '$pattern'"; }
    ok "$what -> $(grep -F -- "$pattern" <<<"$out" | head -n 1 | sed 's/^[[:space:]-]*//' | cut -c1-150)"
}
expect_fail "replicaCount=two" "at '/replicaCount': got string, want integer" "${base[@]}" --set replicaCount=two
expect_fail "no secrets.existingSecret" "secrets.existingSecret is not set" "${base[@]}" --set secrets.existingSecret=
expect_fail "no dapr.appTokenSecret" "dapr.appTokenSecret is not set" "${base[@]}" --set dapr.appTokenSecret=
expect_fail "a typo (replicas=3)" "additional properties 'replicas' not allowed" "${base[@]}" --set replicas=3
expect_fail "kafka.protocolVersion=latest" "/kafka/protocolVersion" "${base[@]}" --set kafka.protocolVersion=latest
expect_fail "components.source=disk" "/components/source" "${base[@]}" --set components.source=disk
expect_fail "configMap without files or name" "components.source=configMap needs either" "${base[@]}" --set components.source=configMap

# ======================================================================================
stage sidecars
# The chart's Dapr resources in two real daprd sidecars against a real Kafka (what fake nodes
# cannot show): fan-out of task-updates, one group for task-events, both Kafka protocol settings.
"$K8S_SCRIPTS/check-sidecars.sh" | sed 's/^/  /'

# ======================================================================================
stage cluster
"$K8S_SCRIPTS/cluster.sh" up 2
k apply --server-side -f "$SCHEMAS/crd-yaml/dapr-$DAPR_CRD_VERSION/" -f "$SCHEMAS/crd-yaml/strimzi-${strimzi_versions[0]}/" >/dev/null
# (a CRD created a moment ago may have no conditions yet, which `kubectl wait` reports as an error)
for _ in $(seq 1 60); do k wait --for condition=established --timeout=30s crd --all >/dev/null 2>&1 && break; sleep 0.5; done
k wait --for condition=established --timeout=5s crd --all >/dev/null || fail "the CRDs are not established"
ok "CRDs established: $(k get crd -o name | sed 's|.*/||' | tr '\n' ' ')"
# The release's namespace enforces the "restricted" Pod Security Standard.
k create namespace "$ns" >/dev/null
k label namespace "$ns" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null
k create namespace kafka >/dev/null
for _ in $(seq 1 50); do k -n "$ns" get serviceaccount default >/dev/null 2>&1 && break; sleep 0.2; done
"$K8S_SCRIPTS/create-secrets.sh" -n "$ns" --with-postgres | sed 's/^/  /'

# ======================================================================================
stage dry-run
dry() {  # dry LABEL NAMESPACE FILE...
    local label=$1 n=$2 out; shift 2
    local args=() f
    for f in "$@"; do args+=(-f "$f"); done
    # server-side apply: a client-side apply would copy each object into an annotation, too
    # large (> 256 KiB) for the ConfigMap of components
    out=$(k apply --server-side --dry-run=server --warnings-as-errors -n "$n" "${args[@]}" 2>&1) || { printf '%s\n' "$out" >&2; fail "server dry run: $label"; }
    ok "$label: $(grep -c '(server dry run)' <<<"$out") objects accepted by the API server"
}
dry "chart (image components)" "$ns" "$work/render-default.yaml"
dry "chart (ConfigMap components, HPA)" "$ns" "$work/render-variant.yaml"
dry "deploy/dapr" "$ns" "$TASKHOST_REPO"/deploy/dapr/*.yaml
dry "deploy/k8s/postgres" "$ns" "$K8S_SCRIPTS"/postgres/postgres.yaml
dry "deploy/k8s/strimzi" kafka "$K8S_SCRIPTS"/strimzi/kafka.yaml "$K8S_SCRIPTS"/strimzi/topics.yaml
dry "deploy/k8s/strimzi/local" kafka "$K8S_SCRIPTS"/strimzi/local/kafka.yaml

# ======================================================================================
stage install
# What a pod of the release runs: image and components checksum, per pod.
pods_state() {
    k -n "$ns" get pods -l "app.kubernetes.io/instance=$rel" -o json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    if p["metadata"].get("deletionTimestamp"): continue
    a = p["metadata"].get("annotations", {})
    print(p["metadata"]["name"], p["status"].get("phase"), p["spec"]["containers"][0]["image"],
          a.get("checksum/components", "-")[:16], p["metadata"]["labels"].get("pod-template-hash"))'
}
cm_sync_sha() {  # the sha256 (16 hex) of sync.wasm in the components ConfigMap
    k -n "$ns" get configmap "$rel-components" -o jsonpath='{.binaryData.sync\.wasm}' | base64 -d | sha256sum | cut -c1-16
}
expect_rollout() {  # expect_rollout IMAGE_TAG SYNC_SHA: every pod Running that image, ConfigMap at that sha
    local tag=$1 want=$2 state
    k -n "$ns" rollout status "deployment/$rel" --timeout=120s >/dev/null || fail "rollout did not finish"
    k -n "$ns" wait --for=condition=Available "deployment/$rel" --timeout=60s >/dev/null || fail "Deployment not Available"
    state=$(pods_state)
    [[ $(cm_sync_sha) == "$want" ]] || fail "ConfigMap sync.wasm is $(cm_sync_sha), expected $want"
    local bad
    bad=$(awk -v t="localhost/taskhost:$tag" '$2 != "Running" || $3 != t' <<<"$state")
    [[ -z $bad ]] || { printf '%s\n' "$state" >&2; fail "pods not all Running $tag: $bad"; }
    printf '%s\n' "$state" | sed 's/^/        /'
}
release_bytes() { k -n "$ns" get secret -l "owner=helm,name=$rel" -o json | python3 -c '
import json, sys; print(max(len(json.dumps(i)) for i in json.load(sys.stdin)["items"]))'; }
up_args=("${base[@]}" --set components.source=configMap --set components.configMap.restartPodsOnChange=true)
h install "$rel" "$CHART_DIR" "${up_args[@]}" --set image.tag=v1 "${files_v1[@]}" --wait --timeout 3m >"$work/install.log" ||
    { cat "$work/install.log"; fail "helm install --wait"; }
expect_rollout v1 "$(sha "$work/v1/sync.wasm")"
rs1=$(k -n "$ns" get deployment "$rel" -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')
ok "helm install --wait: Deployment Available, $(pods_state | wc -l) pods Running (image v1, sync $(sha "$work/v1/sync.wasm")); release record $(release_bytes) bytes (limit 1 MiB)"
k -n "$ns" get deployment,replicaset,pod,service,configmap,pdb,serviceaccount,component.dapr.io,subscription.dapr.io,resiliency.dapr.io,configuration.dapr.io \
    -l "app.kubernetes.io/instance=$rel" -o name >"$work/objects" 2>/dev/null || true
k -n "$ns" get component.dapr.io,resiliency.dapr.io,configuration.dapr.io -o name >>"$work/objects"
ok "objects: $(sort -u "$work/objects" | sed 's|\.[a-z.]*/|/|' | awk -F/ '{print $1}' | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}' | sed 's/, $//')"
# a broken value against the cluster: a Secret that does not exist
if out=$("$helm" install broken "$CHART_DIR" "${base[@]}" --set secrets.existingSecret=no-such-secret --dry-run=server 2>&1); then
    fail "helm install with a missing Secret was accepted"
fi
grep -q 'Secret "no-such-secret" does not exist in namespace' <<<"$out" || { printf '%s\n' "$out" >&2; fail "missing Secret: unclear message"; }
ok "missing Secret -> $(grep -o 'Secret "no-such-secret" does not exist in namespace[^.]*' <<<"$out")"
k -n "$ns" create secret generic partial --from-literal=database-url=postgres://x >/dev/null
if out=$("$helm" install broken "$CHART_DIR" "${base[@]}" --set secrets.existingSecret=partial --dry-run=server 2>&1); then
    fail "helm install with a Secret lacking jwt-secret was accepted"
fi
k -n "$ns" delete secret partial >/dev/null
grep -q 'Secret "partial" in namespace "taskhost-test" has no key "jwt-secret"' <<<"$out" || { printf '%s\n' "$out" >&2; fail "Secret without a key: unclear message"; }
ok "Secret without jwt-secret -> $(grep -o 'Secret "partial".*' <<<"$out")"

# ======================================================================================
stage inject
# No Dapr control plane here: dapr-inject applies Dapr 1.18.0's own sidecar-injector code to the
# chart's pod template, and the result goes to the API server, in the "restricted" namespace.
inject=$K8S_BIN/dapr-inject
if out=$("$inject" -namespace "$ns" <"$work/render-default.yaml" | k apply --server-side --dry-run=server -n "$ns" -f - 2>&1); then
    fail "the injected pod with Dapr's default injector settings passed Pod Security \"restricted\" (expected: daprd lacks capabilities.drop=ALL)"
fi
grep -q 'container "daprd" must set securityContext.capabilities.drop=\["ALL"\]' <<<"$out" || { printf '%s\n' "$out" >&2; fail "unexpected rejection of the injected pod"; }
ok "Dapr's injector with its defaults: rejected by \"restricted\" (daprd must drop ALL capabilities) -> install Dapr with dapr_sidecar_injector.sidecarDropALLCapabilities=true"
"$inject" -namespace "$ns" -drop-all-capabilities <"$work/render-default.yaml" >"$work/injected.json"
k apply --server-side --warnings-as-errors -n "$ns" -f "$work/injected.json" >/dev/null || fail "the injected pod was refused"
k -n "$ns" wait --for=condition=Ready pod/"$rel"-injected --timeout=60s >/dev/null || fail "the injected pod did not become Ready"
ok "with sidecarDropALLCapabilities=true: accepted; pod $(k -n "$ns" get pod "$rel"-injected -o jsonpath='{.metadata.name} {.status.phase}, ready: {range .status.containerStatuses[*]}{.name}={.ready} {end}')| daprd: $(python3 -c '
import json, sys
c = [c for c in json.load(open(sys.argv[1]))["spec"]["containers"] if c["name"] == "daprd"][0]
a = c["args"]; pick = ["--app-id", "--config", "--app-health-check-path", "--app-max-concurrency"]
print(" ".join(f"{k} {a[a.index(k) + 1]}" for k in pick if k in a), "| env", " ".join(e["name"] for e in c["env"] if e["name"].startswith("TASKHOST_")))' "$work/injected.json")"
k -n "$ns" delete pod "$rel"-injected --wait=false >/dev/null

# ======================================================================================
stage upgrade
h upgrade "$rel" "$CHART_DIR" "${up_args[@]}" --set image.tag=v2 "${files_v2[@]}" --wait --timeout 3m >"$work/upgrade.log" ||
    { cat "$work/upgrade.log"; fail "helm upgrade --wait"; }
expect_rollout v2 "$(sha "$work/v2/sync.wasm")"
rs2=$(k -n "$ns" get deployment "$rel" -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')
((rs2 > rs1)) || fail "no new Deployment revision after the upgrade ($rs1 -> $rs2)"
ok "helm upgrade: Deployment revision $rs1 -> $rs2, every pod Running v2 with sync $(sha "$work/v2/sync.wasm")"

# ======================================================================================
stage rollback
h rollback "$rel" 1 --namespace "$ns" --wait --timeout 3m >"$work/rollback.log" || { cat "$work/rollback.log"; fail "helm rollback"; }
expect_rollout v1 "$(sha "$work/v1/sync.wasm")"
rs3=$(k -n "$ns" get deployment "$rel" -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')
ok "helm rollback to 1: Deployment revision $rs2 -> $rs3, pods back on v1 and sync $(sha "$work/v1/sync.wasm"); history: $("$helm" -n "$ns" history "$rel" -o json | python3 -c 'import json,sys; print(", ".join("%s %s" % (r["revision"], r["status"]) for r in json.load(sys.stdin)))')"

# ======================================================================================
stage hot-swap
hs_args=("${base[@]}" --set components.source=configMap --set components.configMap.restartPodsOnChange=false --set image.tag=v1)
h upgrade "$rel" "$CHART_DIR" "${hs_args[@]}" "${files_v1[@]}" --wait --timeout 3m >/dev/null || fail "helm upgrade (restartPodsOnChange=false)"
k -n "$ns" rollout status "deployment/$rel" --timeout=120s >/dev/null
before=$(pods_state | awk '{print $1}' | sort | tr '\n' ' ')
gen_before=$(k -n "$ns" get deployment "$rel" -o jsonpath='{.metadata.generation}')
h upgrade "$rel" "$CHART_DIR" "${hs_args[@]}" "${files_v2[@]}" --wait --timeout 3m >/dev/null || fail "helm upgrade (sync v2, hot swap)"
sleep 2
after=$(pods_state | awk '{print $1}' | sort | tr '\n' ' ')
gen_after=$(k -n "$ns" get deployment "$rel" -o jsonpath='{.metadata.generation}')
[[ $(cm_sync_sha) == "$(sha "$work/v2/sync.wasm")" ]] || fail "the ConfigMap did not change to sync v2"
[[ $before == "$after" && $gen_before == "$gen_after" ]] || fail "pods were replaced ($before -> $after, generation $gen_before -> $gen_after)"
ok "component change with restartPodsOnChange=false: ConfigMap sync -> $(cm_sync_sha), same pods ($after), Deployment generation $gen_after unchanged"
# ship-components.sh: a ConfigMap outside helm (components.configMap.name), updated and rolled back
"$K8S_SCRIPTS/ship-components.sh" -n "$ns" --name shipped-components "$work/v1" >/dev/null
"$K8S_SCRIPTS/ship-components.sh" -n "$ns" --name shipped-components "$work/v2" >/dev/null
shipped() { k -n "$ns" get configmap "$1" -o jsonpath='{.binaryData.sync\.wasm}' | base64 -d | sha256sum | cut -c1-16; }
[[ $(shipped shipped-components) == "$(sha "$work/v2/sync.wasm")" && $(shipped shipped-components-previous) == "$(sha "$work/v1/sync.wasm")" ]] ||
    fail "ship-components.sh did not write v2 (and keep v1 as -previous)"
"$K8S_SCRIPTS/ship-components.sh" -n "$ns" --name shipped-components --rollback >/dev/null
[[ $(shipped shipped-components) == "$(sha "$work/v1/sync.wasm")" ]] || fail "ship-components.sh --rollback did not restore v1"
h upgrade "$rel" "$CHART_DIR" "${base[@]}" --set components.source=configMap --set components.configMap.name=shipped-components \
    --set image.tag=v1 --wait --timeout 3m >/dev/null || fail "helm upgrade onto the shipped ConfigMap"
k -n "$ns" rollout status "deployment/$rel" --timeout=120s >/dev/null
mounted=$(k -n "$ns" get deployment "$rel" -o jsonpath='{.spec.template.spec.volumes[?(@.name=="components")].configMap.name}')
[[ $mounted == shipped-components ]] || fail "the Deployment mounts '$mounted', not shipped-components"
ok "ship-components.sh: v1 -> v2 (v1 kept as -previous) -> --rollback; release mounts it: $mounted"

# ======================================================================================
stage "done"
printf '\n== timings ==\n'
printf '  %s\n' "${timings[@]}"
printf '  %-9s %6s s\n' total "$(secs_since "$t_start")"
printf '\ndeploy-test: %d passed, 0 failed\n' "$(( ${#timings[@]} ))"
