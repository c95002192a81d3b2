# taskhost's tasks. `just run` is the quick start; `just test` is what CI runs.

set shell := ["bash", "-euo", "pipefail", "-c"]
set dotenv-load := false
# Comments inside recipes are for the reader, not echoed as commands.
set ignore-comments := true

root := justfile_directory()
cache := env("TASKHOST_CACHE", home_directory() / ".cache/taskhost")

# scripts/install-tools.sh puts just, wasmtime and wasm-tools in this venv when the system
# lacks them; recipes find them (and rustup's cargo) whatever the caller's PATH.
export PATH := cache / "venv/bin" + ":" + home_directory() / ".cargo/bin" + ":" + env("PATH")

# cargo puts the components here: under CARGO_TARGET_DIR when set (CI caches it outside
# the clone), relative to the repo otherwise.
wasm_out := join(root, env("CARGO_TARGET_DIR", "target")) / "wasm32-wasip2/release-wasm"

# What the host loads (`--components-dir`), and where the tests find the same .wasm files.
components_dir := join(root, env("TASKHOST_COMPONENTS_OUT", "target/components"))
components := "recurrence notification audit sync"

export TASKHOST_TEST_COMPONENTS_DIR := components_dir

# List the recipes
default:
    @{{ quote(just_executable()) }} --list --unsorted

# Install every tool the build and the tests need (quiet when all are present)
setup:
    scripts/install-tools.sh

# Install only the pinned Rust toolchain: all that building and running needs
setup-light:
    @scripts/install-tools.sh --rust-only

# Build the four components (.wasm) and put them where the host loads them
build-components: setup-light
    cargo build --profile release-wasm --target wasm32-wasip2 -p recurrence -p notification -p audit -p sync
    @mkdir -p {{ quote(components_dir) }}
    # Only changed files are copied, each by an atomic rename: a running host hot-swaps
    # what changes in its components dir, and must never read a half-written file.
    @for c in {{ components }}; do \
        src={{ quote(wasm_out) }}/$c.wasm dst={{ quote(components_dir) }}/$c.wasm; \
        cmp -s "$src" "$dst" || { cp "$src" "$dst.tmp" && mv -f "$dst.tmp" "$dst"; }; \
    done

# Build the components and the host binary (release)
build: build-components
    cargo build -p taskhost --release

# Run the host in dev mode on SQLite (data/taskhost.db); ARGS go to `taskhost serve`
[positional-arguments]
run *ARGS: setup-light build-components
    @mkdir -p data
    cargo run -p taskhost --release -- serve --dev --components-dir {{ quote(components_dir) }} --database-url 'sqlite://data/taskhost.db?mode=rwc' "$@"

# Print a dev JWT for USER, accepted by `just run`
[positional-arguments]
token USER: setup-light
    @cargo run -q -p taskhost --release -- token "$1" --dev

# Run every test and check, as CI does: components, CLI, host on SQLite and PostgreSQL, lint
test: setup build-components test-components test-host test-pg test-observability lint
    @echo "== all tests passed =="

# Test the components: their own tests (wasmtime only), then `wasmtime --invoke` checks
test-components: build-components
    @echo "== component tests =="
    cargo test -p recurrence -p notification -p audit -p sync -p arena -p testkit
    @echo "== component CLI checks =="
    @test -f scripts/test-components-cli.sh || { echo "error: scripts/test-components-cli.sh is missing" >&2; exit 1; }
    bash scripts/test-components-cli.sh {{ quote(components_dir) }}

# ---- Consumers in Python and JavaScript (components/README.md): toolchains, builds, tests

# The Python and JavaScript builds of the audit consumer, and the taskhost that builds them
polyglot_dir := join(root, env("CARGO_TARGET_DIR", "target")) / "polyglot"
debug_host := join(root, env("CARGO_TARGET_DIR", "target")) / "debug/taskhost"

# Install the pinned toolchains that build consumers: componentize-py (PyPI), componentize-js + jco (npm; Debian's nodejs and npm first if there is no npm)
setup-toolchains:
    #!/usr/bin/env bash
    set -euo pipefail
    . scripts/lib.sh
    # The toolchain script never installs system packages (`taskhost build` runs it on users'
    # machines too): on a CI machine with nothing but rustup and pip, Node.js comes from here.
    if ! command -v npm >/dev/null; then
        say "== installing Debian's nodejs and npm =="
        apt_install nodejs npm
    fi
    scripts/install-component-toolchains.sh >/dev/null

# Build the audit consumer in Python and JavaScript (components/audit-py, audit-js) into target/polyglot/ (cached by their sources)
build-polyglot: setup-light setup-toolchains
    cargo build -p taskhost
    {{ quote(debug_host) }} build components/audit-py --out {{ quote(polyglot_dir / "python/audit.wasm") }}
    {{ quote(debug_host) }} build components/audit-js --out {{ quote(polyglot_dir / "javascript/audit.wasm") }}

# The audit consumer's own tests against its Python and JavaScript builds, and their answers against the Rust build's on recorded messages
test-polyglot: build-components build-polyglot
    @echo "== components/audit/tests against the Python build =="
    TASKHOST_COMPONENTS_DIR={{ quote(polyglot_dir / "python") }} cargo test -p audit --test audit
    @echo "== components/audit/tests against the JavaScript build =="
    TASKHOST_COMPONENTS_DIR={{ quote(polyglot_dir / "javascript") }} cargo test -p audit --test audit
    @echo "== the three builds' answers on recorded messages =="
    TASKHOST_TEST_POLYGLOT_DIR={{ quote(polyglot_dir) }} cargo test -p taskhost --test polyglot_audit -- --ignored

# From `taskhost new` to live traffic in Rust, Python and JavaScript: build, run with wasmtime, push while events flow, roll back
test-new-consumer: build-components setup-toolchains
    cargo test -p taskhost --test new_consumer -- --ignored --nocapture

# test-polyglot and test-new-consumer: what CI runs for consumers in Python and JavaScript
test-languages: test-polyglot test-new-consumer

# Run the host's tests on SQLite
test-host: build-components
    @echo "== host tests on SQLite =="
    env -u TASKHOST_TEST_DATABASE_URL cargo test -p taskhost -p taskhost-wire

# Run the host's tests on a throwaway PostgreSQL (scripts/pg-test.sh), stopped afterwards
test-pg: build-components
    #!/usr/bin/env bash
    set -euo pipefail
    echo "== host tests on PostgreSQL =="
    url=$(scripts/pg-test.sh start)
    trap 'scripts/pg-test.sh stop' EXIT
    TASKHOST_TEST_DATABASE_URL=$url cargo test -p taskhost

# Check the Grafana dashboard and Prometheus rules: valid, and only metrics the host exports
test-observability:
    @echo "== observability files =="
    @python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
    python3 deploy/observability/check.py

# Check that host/src's modules depend one way, run clippy (warnings are errors), check formatting
lint: setup-light
    @echo "== dependencies point one way =="
    python3 scripts/check-layers.py host/src
    @echo "== clippy =="
    cargo clippy --workspace --all-targets -- -D warnings
    @echo "== rustfmt =="
    cargo fmt --all -- --check

# Fuzz the event decoding path (host/fuzz, target decode_event) for SECONDS. A crash fails the
# recipe; libFuzzer names the input that caused it (under host/fuzz/artifacts/decode_event/).
fuzz SECONDS="60": setup-light
    #!/usr/bin/env bash
    set -euo pipefail
    seconds={{ quote(SECONDS) }}
    [[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "error: SECONDS must be a positive whole number of seconds, got '$seconds'" >&2; exit 2; }
    # cargo-fuzz, once, into the cache (skipped when the 0.13 series is there).
    tools={{ quote(cache / "tools") }}
    if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q '^cargo-fuzz 0\.13\.'; then
        echo "== installing cargo-fuzz 0.13 into $tools =="
        env -u CARGO_TARGET_DIR cargo install --locked --root "$tools" cargo-fuzz --version '~0.13'
    fi
    export PATH="$tools/bin:$PATH"
    # cargo-fuzz passes nightly flags (-Z ...): the pinned stable toolchain takes them so.
    export RUSTC_BOOTSTRAP=1
    # Build output and the corpus the run grows stay out of the clone; the checked-in seeds
    # (real event shapes) are read, never written.
    target={{ quote(join(root, env("CARGO_TARGET_DIR", "target"))) }}/fuzz
    corpus="$target/corpus/decode_event"
    mkdir -p "$corpus"
    cd host/fuzz
    echo "== fuzzing decode_event for ${seconds}s =="
    # No sanitizer: the decoding path is safe Rust; debug assertions catch overflows.
    # libFuzzer's progress lines (one per new input: thousands) are left out; a crash, its
    # input's path and the final stats are shown.
    cargo fuzz run --sanitizer none --debug-assertions --target-dir "$target" decode_event \
        "$corpus" seeds/decode_event -- \
        -max_total_time="$seconds" -dict=decode_event.dict -print_final_stats=1 2>&1 |
        grep --line-buffered -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED)'

# Format all Rust code
fmt: setup-light
    cargo fmt --all

# Delete the dev database (data/) that `just run` creates
clean-data:
    rm -rf data

# ---- The real Dapr stack (deploy/local-stack): daprd + scheduler built from Dapr's Go
# modules, Kafka from Maven Central, PostgreSQL from Debian; loopback only, cached in ~/.cache.

# Build daprd + scheduler and fetch Kafka (cached; the first build takes minutes)
stack-build:
    deploy/local-stack/build-dapr.sh
    deploy/local-stack/fetch-kafka.sh

# Start Kafka, PostgreSQL and the Dapr scheduler (idempotent)
stack-up:
    deploy/local-stack/up.sh

# Start daprd next to a host on 127.0.0.1:8080, as `dapr run` would (ARGS go to daprd.sh)
[positional-arguments]
stack-daprd *ARGS:
    deploy/local-stack/daprd.sh "$@"

# Show what of the stack is running
stack-status:
    deploy/local-stack/status.sh

# Stop the stack (data kept; `just stack-purge` deletes it)
stack-down:
    deploy/local-stack/down.sh

# Stop the stack and delete its data
stack-purge:
    deploy/local-stack/down.sh --purge

# End-to-end through daprd + Kafka + PostgreSQL (starts the stack; ARGS go to e2e.sh)
[positional-arguments]
e2e *ARGS: setup build-components
    deploy/local-stack/e2e.sh "$@"

# Faults through the real stack: Kafka, daprd, scheduler, taskhost killed mid-stream (TASKHOST_FAULTS_SHORT=1: CI's form)
[positional-arguments]
e2e-faults *ARGS: setup build-components
    deploy/local-stack/e2e.sh --suite e2e_faults "$@"

# The default rate, 150 writes/s, is half of what the whole path sustained on 2 cores (~300/s: a
# 773/s probe grew the outbox by 460 rows/s). The bench's stack row counts events delivered from
# Kafka, not writes (each write is an API insert, an outbox publish, deliveries and job calls), so
# it is printed for reference, not used. TASKHOST_SOAK_RATE / TASKHOST_SOAK_MINUTES override.
# The soak, not in CI: 30 min of Task API writes through the real stack; writes docs/soak.{md,svg}
soak: setup build-components
    #!/usr/bin/env bash
    set -euo pipefail
    bench_rate=$(python3 -c 'import json; rows = {r["id"]: r for r in json.load(open("docs/benchmarks.json"))["rows"]}; print(round(rows["stack.bulk"]["taskhost"]["rate_per_s"]))')
    export TASKHOST_SOAK_RATE=${TASKHOST_SOAK_RATE:-150}
    export TASKHOST_SOAK_MINUTES=${TASKHOST_SOAK_MINUTES:-30}
    export TASKHOST_SOAK_RETENTION_MINUTES=${TASKHOST_SOAK_RETENTION_MINUTES:-10}
    export TASKHOST_SOAK_OUT={{ quote(join(root, env("CARGO_TARGET_DIR", "target")) / "soak/samples.csv") }}
    echo "soak: ${TASKHOST_SOAK_MINUTES} min at ${TASKHOST_SOAK_RATE} writes/s (for reference: the bench's daprd + Kafka row delivered ${bench_rate} events/s in docs/benchmarks.json)"
    deploy/local-stack/e2e.sh --release --down --suite soak
    scripts/soak-report.py "$TASKHOST_SOAK_OUT" --md docs/soak.md --svg docs/soak.svg \
        --retention-min "$TASKHOST_SOAK_RETENTION_MINUTES" --note "just soak: ${TASKHOST_SOAK_MINUTES} min, target ${TASKHOST_SOAK_RATE} writes/s (half of the ~300 writes/s the whole path sustained here), $(nproc) CPUs"

# The benchmark runner (bench/) and the wasmtime floor it compares against.
bench_bin := join(root, env("CARGO_TARGET_DIR", "target")) / "release/taskhost-bench"
host_bin := join(root, env("CARGO_TARGET_DIR", "target")) / "release/taskhost"
# audit built with its `marked` feature, in a target dir of its own (as host/tests/hot_swap.rs
# builds it): the candidate row 8 shadows the serving audit with.
marked_target := join(root, env("CARGO_TARGET_DIR", "target")) / "hot-swap"
marked_wasm := marked_target / "wasm32-wasip2/release-wasm/audit.wasm"

# Row 6 of `just bench`: this build beside a baseline commit's (the wasm floor, the Dapr route).
# TASKHOST_BENCH_BASELINE=<rev> picks another commit, TASKHOST_BENCH_BASELINE= none.
bench_baseline := env("TASKHOST_BENCH_BASELINE", "")

# Build (cached per commit) the baseline's release host and runner; prints their paths and a label. Run it before taking the stack lock: cold it is a release build
bench-baseline-build REV=bench_baseline:
    @[[ -n {{ quote(REV) }} ]] || { echo "no baseline commit (TASKHOST_BENCH_BASELINE is empty)" >&2; exit 1; }
    scripts/bench-baseline.sh {{ quote(REV) }}

# Build what the benchmarks run: the components, the empty floor component, the release host and runner
bench-build: build-components
    cargo build --profile release-wasm --target wasm32-wasip2 -p empty
    cargo build --profile release-wasm --target wasm32-wasip2 -p audit --features audit/marked --target-dir {{ quote(marked_target) }}
    cargo build --release -p taskhost -p taskhost-bench

# Benchmark every row beside its reference (throwaway PostgreSQL; local Dapr stack for row 5, stopped after); writes docs/benchmarks.{md,json}
bench: bench-build build-polyglot
    #!/usr/bin/env bash
    set -euo pipefail
    baseline=()
    if [[ -n {{ quote(bench_baseline) }} ]]; then
        echo "== baseline {{ bench_baseline }} (row 6; release build cached per commit) =="
        mapfile -t b < <(scripts/bench-baseline.sh {{ quote(bench_baseline) }})
        ((${#b[@]} == 3)) || { echo "scripts/bench-baseline.sh printed ${#b[@]} lines, not 3" >&2; exit 1; }
        baseline=(--baseline-host-bin "${b[0]}" --baseline-bench-bin "${b[1]}" --baseline-label "${b[2]}"
            --label "$(scripts/bench-baseline.sh --label)")
    fi
    echo "== hot swap under a steady stream (release) =="
    swap_log=$(mktemp /tmp/taskhost-bench-hotswap.XXXXXX)
    trap 'rm -f "$swap_log"; scripts/pg-test.sh stop; deploy/local-stack/down.sh' EXIT
    cargo test --release -p taskhost --test hot_swap stream_ -- --nocapture 2>&1 | grep -E '^hot-swap' | tee "$swap_log"
    echo "== PostgreSQL =="
    pg_url=$(scripts/pg-test.sh start)
    echo "== local stack (daprd + Kafka + PostgreSQL, row 5; cached builds) =="
    deploy/local-stack/build-dapr.sh
    deploy/local-stack/fetch-kafka.sh
    deploy/local-stack/up.sh
    # Row 5's consumer group starts at the end of the topics: a soak or e2e run leaves hundreds of
    # thousands of events there, more than its first drain gets through in its 300 s.
    deploy/local-stack/skip-backlog.sh taskhost-bench
    stack_pg_url=$(. deploy/local-stack/env.sh && echo "$DATABASE_URL")
    {{ quote(bench_bin) }} --host-bin {{ quote(host_bin) }} --components-dir {{ quote(components_dir) }} \
        --empty-wasm {{ quote(wasm_out) }}/empty.wasm --pg-url "$pg_url" --hot-swap-log "$swap_log" \
        --stack-pg-url "$stack_pg_url" --polyglot-dir {{ quote(polyglot_dir) }} --shadow-wasm {{ quote(marked_wasm) }} --out-dir docs "${baseline[@]}" \
        --command "just bench   # = cargo test --release -p taskhost --test hot_swap stream_ -- --nocapture (hot-swap lines); scripts/pg-test.sh start; deploy/local-stack/{build-dapr,fetch-kafka,up}.sh; then"

# Only row 5 (through daprd + Kafka + PostgreSQL), printed, nothing written; starts and stops the local stack
bench-stack: bench-build
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'deploy/local-stack/down.sh' EXIT
    deploy/local-stack/build-dapr.sh
    deploy/local-stack/fetch-kafka.sh
    deploy/local-stack/up.sh
    # Row 5's consumer group starts at the end of the topics: a soak or e2e run leaves hundreds of
    # thousands of events there, more than its first drain gets through in its 300 s.
    deploy/local-stack/skip-backlog.sh taskhost-bench
    stack_pg_url=$(. deploy/local-stack/env.sh && echo "$DATABASE_URL")
    {{ quote(bench_bin) }} --only-real-stack --host-bin {{ quote(host_bin) }} --components-dir {{ quote(components_dir) }} \
        --empty-wasm {{ quote(wasm_out) }}/empty.wasm --stack-pg-url "$stack_pg_url" --command "just bench-stack"

# Only row 6: this build beside the baseline commit's (wasm floor, Dapr route on SQLite), printed, nothing written; needs no stack
bench-compare REV=bench_baseline: bench-build
    #!/usr/bin/env bash
    set -euo pipefail
    [[ -n {{ quote(REV) }} ]] || { echo "no baseline commit: just bench-compare <rev> (or TASKHOST_BENCH_BASELINE)" >&2; exit 1; }
    mapfile -t b < <(scripts/bench-baseline.sh {{ quote(REV) }})
    ((${#b[@]} == 3)) || { echo "scripts/bench-baseline.sh printed ${#b[@]} lines, not 3" >&2; exit 1; }
    {{ quote(bench_bin) }} --only-baseline --host-bin {{ quote(host_bin) }} --components-dir {{ quote(components_dir) }} \
        --empty-wasm {{ quote(wasm_out) }}/empty.wasm --baseline-host-bin "${b[0]}" --baseline-bench-bin "${b[1]}" \
        --baseline-label "${b[2]}" --label "$(scripts/bench-baseline.sh --label)" --command "just bench-compare {{ REV }}"

# Only row 1 (each component's per-message cost beside the empty component, in-process), printed, nothing written
bench-components: bench-build
    {{ quote(bench_bin) }} --only-components --host-bin {{ quote(host_bin) }} --components-dir {{ quote(components_dir) }} \
        --empty-wasm {{ quote(wasm_out) }}/empty.wasm --command "just bench-components"

# Only row 7 (audit built from Rust, Python and JavaScript: per message, memory per instance, start-up), printed, nothing written
bench-languages: bench-build build-polyglot
    {{ quote(bench_bin) }} --only-languages --host-bin {{ quote(host_bin) }} --components-dir {{ quote(components_dir) }} \
        --empty-wasm {{ quote(wasm_out) }}/empty.wasm --polyglot-dir {{ quote(polyglot_dir) }} --command "just bench-languages"

# The short benchmark subset CI runs (< 2 min with a warm build): prints ratios, fails only if a row cannot be measured
# Only row 8 (the serving path with a candidate in shadow beside without), printed, nothing written
bench-shadow: bench-build
    {{ quote(bench_bin) }} --only-shadow --host-bin {{ quote(host_bin) }} --components-dir {{ quote(components_dir) }} \
        --empty-wasm {{ quote(wasm_out) }}/empty.wasm --shadow-wasm {{ quote(marked_wasm) }} --command "just bench-shadow"

bench-quick: bench-build
    {{ quote(bench_bin) }} --quick --host-bin {{ quote(host_bin) }} --components-dir {{ quote(components_dir) }} \
        --empty-wasm {{ quote(wasm_out) }}/empty.wasm --shadow-wasm {{ quote(marked_wasm) }} --out-dir {{ quote(join(root, env("CARGO_TARGET_DIR", "target"))) }}/bench-quick \
        --command "just bench-quick"

# ---- Kubernetes (deploy/): image and chart, checked against a real control plane ----

# Build the container image without Docker (release host + the libraries it links + components, OCI layout) and check it
image: setup-light
    deploy/k8s/install-tools.sh crane
    deploy/k8s/build-image.sh

# Test the Kubernetes deployment: image, chart, schemas, Dapr sidecars, a real control plane with kwok nodes
deploy-test: setup-light
    deploy/k8s/deploy-test.sh

# Test the web page in Debian's Chromium (playwright-core) against the real host; screenshots in target/ui-screenshots/
e2e-ui: build-components
    TASKHOST_COMPONENTS_DIR={{ quote(components_dir) }} e2e-ui/run.sh
