#!/usr/bin/env bash
# The baseline of `just bench`'s row 6: the release `taskhost` and `taskhost-bench` of another
# commit (e.g. the one before a wasmtime bump), so that one run measures both builds side by side.
#
# Usage: scripts/bench-baseline.sh REV      build (once per commit, cached) and print three lines:
#                                           the host binary, the bench runner, a label
#        scripts/bench-baseline.sh --label  print the label of the work tree's build
#
# The commit's sources are taken with `git archive` into a scratch directory (the work tree is
# never touched) and built with that commit's own rust-toolchain.toml and Cargo.lock (--locked),
# into $CARGO_TARGET_DIR/bench-baseline (kept: the next baseline commit builds incrementally).
# The binaries are kept in $TASKHOST_CACHE/bench-baseline/<commit>/. Cold, this is one release
# build of the host and the runner (wasmtime included): tens of minutes on a busy 2-core machine.
# A label is "<short commit> (wasmtime <version from that Cargo.lock>)".
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${TASKHOST_CACHE:-$HOME/.cache/taskhost}/bench-baseline
target=${CARGO_TARGET_DIR:-$repo/target}
[[ $target == /* ]] || target=$repo/$target
say() { printf '[bench-baseline] %s\n' "$*" >&2; }
die() { printf '[bench-baseline] ERROR: %s\n' "$*" >&2; exit 1; }

# wasmtime_of LOCKFILE-TEXT: the version of the `wasmtime` package in a Cargo.lock
wasmtime_of() { awk '$0 == "name = \"wasmtime\"" { getline; gsub(/version = |"/, ""); print; exit }'; }

case ${1:-} in
    --label)
        dirty=$(git -C "$repo" status --porcelain --untracked-files=no | grep -q . && echo "+changes" || true)
        printf '%s%s (wasmtime %s)\n' "$(git -C "$repo" rev-parse --short HEAD)" "$dirty" \
            "$(wasmtime_of <"$repo/Cargo.lock")"
        exit 0 ;;
    "" | -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

commit=$(git -C "$repo" rev-parse --verify --quiet "$1^{commit}") ||
    die "'$1' is not a commit of $repo (fetch it, or set TASKHOST_BENCH_BASELINE to another one)"
short=$(git -C "$repo" rev-parse --short "$commit")
dir=$cache/$commit
label="$short (wasmtime $(git -C "$repo" show "$commit:Cargo.lock" | wasmtime_of))"
done_() { printf '%s\n%s\n%s\n' "$dir/taskhost" "$dir/taskhost-bench" "$label"; }

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if [[ -x $dir/taskhost && -x $dir/taskhost-bench ]]; then
    say "baseline $label: cached in $dir"
    done_; exit 0
fi
git -C "$repo" show "$commit:bench/src/main.rs" | grep -q floor_only ||
    die "commit $short predates taskhost-bench --floor-only: pick a baseline at or after the commit that added it"

src=$(mktemp -d "${TMPDIR:-/tmp}/taskhost-baseline-$short.XXXXXX")
trap 'rm -rf "$src"' EXIT
git -C "$repo" archive "$commit" | tar -x -C "$src"
say "building the baseline $label in release (host + runner) into $target/bench-baseline"
t0=$SECONDS
(cd "$src" && CARGO_TARGET_DIR=$target/bench-baseline cargo build --locked --release -p taskhost -p taskhost-bench >&2) ||
    die "the release build of $short failed (output above)"
mkdir -p "$dir.tmp"
cp "$target/bench-baseline/release/taskhost" "$target/bench-baseline/release/taskhost-bench" "$dir.tmp/"
rm -rf "$dir"; mv "$dir.tmp" "$dir"
say "built in $((SECONDS - t0)) s"
done_
