#!/usr/bin/env bash
# Build daprd + the Dapr scheduler from the Go module proxy (no GitHub, no release downloads).
# Cached: does nothing when both binaries are already in $DAPR_BIN.
# Usage: deploy/local-stack/build-dapr.sh [--force]
#
# The module source is copied to $DAPR_CACHE/src (never into the repo) and built there, because
# `go install github.com/dapr/dapr/cmd/daprd@v…` is refused (dapr's go.mod has replace directives).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

force=0
case ${1:-} in
    --force) force=1 ;;
    "") ;;
    *) stack_die "usage: $0 [--force]" ;;
esac

if ((!force)) && [[ -x $DAPR_BIN/daprd && -x $DAPR_BIN/scheduler ]]; then
    stack_say "dapr $DAPR_VERSION: daprd and scheduler cached in $DAPR_BIN (use --force to rebuild)"
    exit 0
fi
command -v go >/dev/null || stack_die "go is not on PATH: install Go >= 1.26.4 (dapr 1.18's go.mod; https://go.dev/dl) to build daprd"

mkdir -p "$DAPR_CACHE"
exec 9>"$DAPR_CACHE/.build.lock"
flock -n 9 || { stack_say "another build of dapr $DAPR_VERSION is running; waiting for it"; flock 9; }
if ((!force)) && [[ -x $DAPR_BIN/daprd && -x $DAPR_BIN/scheduler ]]; then
    stack_say "dapr $DAPR_VERSION was built by the other run"; exit 0
fi

# The module proxy used here has no checksum-database entries for these modules (verifying go.mod: 404);
# every dependency is still pinned by the go.sum that ships inside dapr's module.
export GOSUMDB=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOCACHE=$DAPR_GOCACHE

# The scheduler's github.com/diagridio/go-etcd-cron: the version a Dapr release requires is not
# always served by the module proxy used here. Known substitutes (same minor, API-compatible for
# the scheduler; the Jobs API e2e tests pass with them):
#   dapr 1.16.5 wants v0.9.2  -> v0.9.1 (what dapr 1.16.0-1.16.2 use)
#   dapr 1.18.0 wants v0.12.5 -> v0.12.6 (the next patch; v0.12.4 and v0.12.5 answer 403 here)
declare -A ETCD_CRON_SUBSTITUTE=([v0.9.2]=v0.9.1 [v0.12.5]=v0.12.6)
# pin_etcd_cron DIR: if DIR/go.mod requires a go-etcd-cron the proxy does not serve, append a
# `replace` to a known substitute (go build -mod=mod then writes its go.sum lines).
pin_etcd_cron() {
    local dir=$1 want sub
    want=$(sed -n 's|^[[:space:]]*github.com/diagridio/go-etcd-cron \(v[^[:space:]]*\).*|\1|p' "$dir/go.mod" | head -n 1)
    [[ -n $want ]] || return 0
    go mod download "github.com/diagridio/go-etcd-cron@$want" >/dev/null 2>&1 && return 0
    sub=${ETCD_CRON_SUBSTITUTE[$want]:-}
    [[ -n $sub ]] || stack_die "dapr $DAPR_VERSION requires github.com/diagridio/go-etcd-cron $want, which the module proxy does not serve, and no substitute is known (add one to ETCD_CRON_SUBSTITUTE in $0)"
    stack_say "go-etcd-cron $want is not available from the proxy: pinning $sub (replace in $dir/go.mod)"
    printf '\n// taskhost local stack: go-etcd-cron %s is not served by the module proxy\nreplace github.com/diagridio/go-etcd-cron => github.com/diagridio/go-etcd-cron %s\n' "$want" "$sub" >>"$dir/go.mod"
}

src=$DAPR_CACHE/src
if [[ ! -f $src/go.mod ]]; then
    stack_say "downloading github.com/dapr/dapr@v$DAPR_VERSION from the Go module proxy ($(go env GOPROXY))"
    json=$(go mod download -json "github.com/dapr/dapr@v$DAPR_VERSION") ||
        stack_die "go mod download github.com/dapr/dapr@v$DAPR_VERSION failed: $json"
    dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
    [[ -n $dir && -f $dir/go.mod ]] || stack_die "no module directory in: $json"
    stack_say "copying the module source to $src"
    rm -rf "$src" "$src.tmp"
    cp -r "$dir" "$src.tmp"
    chmod -R u+w "$src.tmp"
    pin_etcd_cron "$src.tmp"
    mv "$src.tmp" "$src"
fi

cd "$src"
ldflags="-s -w -X github.com/dapr/kit/logger.DaprVersion=$DAPR_VERSION"
ldflags+=" -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_VERSION"
ldflags+=" -X github.com/dapr/dapr/pkg/buildinfo.gitcommit=$DAPR_COMMIT"
ldflags+=" -X github.com/dapr/dapr/pkg/buildinfo.gitversion=v$DAPR_VERSION"
out=$DAPR_CACHE/bin.tmp
rm -rf "$out"; mkdir -p "$out"
stack_say "building daprd + scheduler $DAPR_VERSION (tags stablecomponents; GOCACHE=$GOCACHE). Cold: several minutes and ~2 GB of Go cache; warm: ~10 s"
t0=$(now_ms)
# both commands in one `go build` so that they share the compile
go build -mod=mod -tags stablecomponents -trimpath -ldflags="$ldflags" -o "$out/" ./cmd/daprd ./cmd/scheduler ||
    stack_die "go build failed (see above); the source is in $src"
[[ -x $out/daprd && -x $out/scheduler ]] || stack_die "go build produced no daprd/scheduler in $out"
rm -rf "$DAPR_BIN"; mv "$out" "$DAPR_BIN"
stack_say "built in $((($(now_ms) - t0) / 1000)) s: $(du -h "$DAPR_BIN/daprd" "$DAPR_BIN/scheduler" | awk '{printf "%s %s  ", $2, $1}')"
"$DAPR_BIN/daprd" --version
