#!/usr/bin/env bash
# Build taskhost's container image without Docker, then check it.
#
#   1. the host (`cargo build --release`, glibc) and the four components (.wasm). The same
#      release build serves `just bench`: CI builds wasmtime in release once, not twice. (A
#      static musl build was used before: it cost a second release build of the whole tree, and
#      musl's allocator is slow under wasmtime's allocation pattern.)
#   2. one image layer: /usr/local/bin/taskhost, exactly the shared libraries it links (as ldd
#      resolves them on the build machine: the dynamic loader, libc, libm, libgcc_s — what
#      distroless/cc carries), /opt/taskhost/components/*.wasm, /etc/passwd and /etc/group with
#      the user taskhost (65532), /tmp and /var/cache/taskhost — no shell, nothing else (the same
#      filesystem as deploy/Dockerfile's final stage, which is distroless/cc);
#   3. crane (go-containerregistry) pushes it to a registry it serves on 127.0.0.1 only, sets
#      entrypoint, user, environment and labels, and saves it as an OCI image layout in
#      $IMAGE_DIR/oci (plus $IMAGE_DIR/taskhost.tar, a `docker load`-able tarball);
#   4. checks the saved image: non-root user, entrypoint, no /bin/sh, the components inside;
#      then unpacks its layer and runs the entrypoint from it, in a chroot as user 65532 with
#      nothing but the image's files: --version, serve --help, `invoke` of each component, and
#      `serve` answering /healthz and /readyz.
#
# Usage: deploy/k8s/build-image.sh [--check-only]
# Push the result: crane push $IMAGE_DIR/oci REGISTRY/taskhost:TAG  (or skopeo copy oci:...)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

check_only=0
case ${1:-} in
    --check-only) check_only=1 ;;
    "") ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) k8s_die "unknown argument '$1' (see $0 --help)" ;;
esac
crane=$K8S_BIN/crane
[[ -x $crane ]] || k8s_die "no crane in $K8S_BIN: run deploy/k8s/install-tools.sh crane"
cd "$TASKHOST_REPO"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
host_bin=$TARGET_DIR/release/taskhost
wasm_dir=$TARGET_DIR/wasm32-wasip2/release-wasm
components=(recurrence notification audit sync)
mkdir -p "$IMAGE_DIR"
work=$IMAGE_DIR/work
rm -rf "$work"; mkdir -p "$work"

if ((!check_only)); then
    # ---------- 1. binaries ----------
    t0=$(now_ms)
    k8s_say "building the components (wasm32-wasip2, release-wasm) and the host (release) in $TARGET_DIR"
    pkgs=()
    for c in "${components[@]}"; do pkgs+=(-p "$c"); done
    CARGO_TARGET_DIR=$TARGET_DIR cargo build --locked --profile release-wasm --target wasm32-wasip2 "${pkgs[@]}"
    CARGO_TARGET_DIR=$TARGET_DIR cargo build --locked -p taskhost --release
    k8s_say "cargo: $(secs_since "$t0") s"
    # The libraries the binary needs, resolved on this machine (the binary was linked against
    # them, so they match it): `ldd` prints "name => /path (addr)" and the loader's own path.
    # Anything outside the system library dirs would be a surprise worth stopping for.
    mapfile -t libs < <(ldd "$host_bin" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*ld-linux[^ ]*\) .*/\1/p' | sort -u)
    ((${#libs[@]} > 0)) || k8s_die "ldd found no shared libraries for $host_bin: $(ldd "$host_bin" 2>&1)"
    for lib in "${libs[@]}"; do
        [[ $lib == /lib/* || $lib == /lib64/* || $lib == /usr/lib/* ]] ||
            k8s_die "$host_bin links $lib, outside the system library dirs: not packing it"
    done
    k8s_say "shared libraries packed with the host: ${libs[*]}"

    # ---------- 2. the layer ----------
    rootfs=$work/rootfs
    mkdir -p "$rootfs/usr/local/bin" "$rootfs/opt/taskhost/components"
    strip -o "$rootfs/usr/local/bin/taskhost" "$host_bin"
    # each library at the path the binary asks for (links resolved: the file's own bytes)
    for lib in "${libs[@]}"; do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
    for c in "${components[@]}"; do
        [[ -f $wasm_dir/$c.wasm ]] || k8s_die "no $wasm_dir/$c.wasm after the build"
        cp "$wasm_dir/$c.wasm" "$rootfs/opt/taskhost/components/"
    done
    # Reproducible: fixed owners, modes and times (the last commit's), sorted entries.
    epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
    python3 - "$rootfs" "$work/layer.tar" "$epoch" <<'PY'
import io, os, sys, tarfile
root, out, epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
UID = 65532
def add(tf, name, *, data=None, path=None, mode=0o644, uid=0, kind=tarfile.REGTYPE):
    ti = tarfile.TarInfo(name)
    ti.mtime, ti.mode, ti.uid, ti.gid, ti.type = epoch, mode, uid, uid, kind
    ti.uname = ti.gname = "taskhost" if uid else "root"
    if kind == tarfile.DIRTYPE:
        tf.addfile(ti)
        return
    if path is not None:
        data = open(path, "rb").read()
    ti.size = len(data)
    tf.addfile(ti, io.BytesIO(data))
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
    dirs = ["etc", "opt", "opt/taskhost", "opt/taskhost/components", "usr", "usr/local", "usr/local/bin",
            "var", "var/cache", "var/lib", "var/lib/taskhost", "var/lib/taskhost/components"]
    for d in dirs:
        add(tf, d, mode=0o755, kind=tarfile.DIRTYPE)
    add(tf, "tmp", mode=0o1777, kind=tarfile.DIRTYPE)
    # the compiled-component cache, writable by the user (an emptyDir covers it on Kubernetes)
    add(tf, "var/cache/taskhost", mode=0o755, uid=UID, kind=tarfile.DIRTYPE)
    add(tf, "etc/passwd", data=b"root:x:0:0:root:/root:/sbin/nologin\ntaskhost:x:65532:65532:taskhost:/nonexistent:/sbin/nologin\n")
    add(tf, "etc/group", data=b"root:x:0:\ntaskhost:x:65532:\n")
    add(tf, "usr/local/bin/taskhost", path=os.path.join(root, "usr/local/bin/taskhost"), mode=0o755)
    # the shared libraries (step 1), with their parent dirs
    seen = set(dirs)
    for top in ("lib", "lib64", "usr/lib"):
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in sorted(os.walk(base)) if os.path.isdir(base) else []:
            rel = os.path.relpath(dirpath, root)
            parts = rel.split("/")
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in seen:
                    seen.add(d)
                    add(tf, d, mode=0o755, kind=tarfile.DIRTYPE)
            dirnames.sort()
            for f in sorted(filenames):
                add(tf, rel + "/" + f, path=os.path.join(dirpath, f), mode=0o755)
    comp = os.path.join(root, "opt/taskhost/components")
    for f in sorted(os.listdir(comp)):
        add(tf, "opt/taskhost/components/" + f, path=os.path.join(comp, f))
PY

    # ---------- 3. the image, through a registry on loopback ----------
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    PORT=$port "$crane" registry serve --address "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
    reg_pid=$!
    trap 'kill "$reg_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
    ref=127.0.0.1:$port/$IMAGE_NAME:$version
    "$crane" append --insecure --oci-empty-base -f "$work/layer.tar" -t "$ref" >/dev/null
    rev=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    "$crane" mutate --insecure "$ref" -t "$ref" \
        --entrypoint /usr/local/bin/taskhost --cmd serve --user 65532:65532 --workdir / --set-platform linux/amd64 \
        --exposed-ports 8080/tcp \
        --env TASKHOST_LISTEN=0.0.0.0:8080 --env TASKHOST_COMPONENTS_DIR=/opt/taskhost/components \
        --env TASKHOST_CACHE_DIR=/var/cache/taskhost --env TASKHOST_LOG_FORMAT=json \
        --label org.opencontainers.image.title=taskhost --label "org.opencontainers.image.version=$version" \
        --label "org.opencontainers.image.revision=$rev" --label org.opencontainers.image.licenses=Apache-2.0 \
        >/dev/null
    rm -rf "$IMAGE_DIR/oci" "$IMAGE_DIR/taskhost.tar"
    "$crane" pull --insecure --format=oci "$ref" "$IMAGE_DIR/oci"
    "$crane" pull --insecure --format=tarball "$ref" "$IMAGE_DIR/taskhost.tar.tmp"
    # The tarball names the image after the loopback registry; `docker load`/`kind load` should
    # see taskhost:<version>.
    python3 - "$IMAGE_DIR/taskhost.tar.tmp" "$IMAGE_DIR/taskhost.tar" "$IMAGE_NAME:$version" <<'PY'
import io, json, sys, tarfile
src, dst, tag = sys.argv[1:]
with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
    for m in tin.getmembers():
        data = tin.extractfile(m).read() if m.isfile() else None
        if m.name == "manifest.json":
            manifest = json.loads(data)
            for entry in manifest:
                entry["RepoTags"] = [tag]
            data = json.dumps(manifest).encode()
            m.size = len(data)
        tout.addfile(m, io.BytesIO(data) if data is not None else None)
PY
    rm -f "$IMAGE_DIR/taskhost.tar.tmp"
    "$crane" digest --insecure "$ref" >"$IMAGE_DIR/digest"
    kill "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
    trap - EXIT
    k8s_say "image $IMAGE_NAME:$version $(cat "$IMAGE_DIR/digest"): $IMAGE_DIR/oci (OCI layout), $IMAGE_DIR/taskhost.tar ($(du -h "$IMAGE_DIR/taskhost.tar" | cut -f1))"
fi

# ---------- 4. check the saved image ----------
[[ -f $IMAGE_DIR/oci/index.json ]] || k8s_die "no image in $IMAGE_DIR/oci: run $0 without --check-only"
check=$work/check
rm -rf "$check"; mkdir -p "$check/rootfs"
# Read the OCI layout: index -> manifest -> config + layers; unpack every layer in order.
python3 - "$IMAGE_DIR/oci" "$check" <<'PY'
import json, os, sys, tarfile
layout, out = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
index = json.load(open(os.path.join(layout, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
if manifest.get("mediaType", "").endswith("index.v1+json") or "manifests" in manifest:
    manifest = json.load(open(blob(manifest["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=1)
names = []
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"])) as tf:
        names += tf.getnames()
        # `filter` exists from Python 3.11.4/3.12 on (Debian 12's 3.11.2 lacks it): our own layer
        kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(os.path.join(out, "rootfs"), numeric_owner=True, **kwargs)
open(os.path.join(out, "files"), "w").write("\n".join(sorted(names)) + "\n")
PY
cfg=$check/config.json
python3 - "$cfg" "$check/files" <<'PY' || k8s_die "the image's configuration or files are wrong (above)"
import json, sys
c = json.load(open(sys.argv[1]))
files = open(sys.argv[2]).read().split()
cc = c["config"]
problems = []
user = cc.get("User", "")
if not user or user.split(":")[0] in ("0", "root"):
    problems.append(f"user is {user!r}: must be non-root")
if cc.get("Entrypoint") != ["/usr/local/bin/taskhost"]:
    problems.append(f"entrypoint is {cc.get('Entrypoint')}")
if (c.get("os"), c.get("architecture")) != ("linux", "amd64"):
    problems.append(f"platform is {c.get('os')}/{c.get('architecture')}")
for f in ("bin/sh", "usr/bin/sh", "bin/bash", "bin/busybox"):
    if f in files:
        problems.append(f"the image has a shell: /{f}")
for comp in ("recurrence", "notification", "audit", "sync"):
    if f"opt/taskhost/components/{comp}.wasm" not in files:
        problems.append(f"component {comp}.wasm missing")
for p in problems:
    print("image check:", p, file=sys.stderr)
print(f"[k8s] image config: user {user}, entrypoint {cc.get('Entrypoint')} cmd {cc.get('Cmd')}, "
      f"{len(files)} files, no shell, components: " + " ".join(f.rsplit('/', 1)[1] for f in files if f.endswith('.wasm')))
sys.exit(1 if problems else 0)
PY
root=$check/rootfs
# Only the image's files, as the image's user: chroot --userspec needs root; otherwise run the
# unpacked binary directly (from the image, but with this machine's libraries).
if ((EUID == 0)) && chroot_bin=$(command -v chroot); then
    image_argv=(env -i TASKHOST_CACHE_DIR=/var/cache/taskhost TASKHOST_LOG_FORMAT=text "$chroot_bin" --userspec=65532:65532 "$root")
    bin_prefix=""
    prefix=""
    how="chroot as 65532:65532"
else
    image_argv=(env -i TASKHOST_CACHE_DIR="$root/var/cache/taskhost" TASKHOST_LOG_FORMAT=text)
    bin_prefix=$root
    prefix=$root
    how="unpacked (not root: no chroot)"
fi
# Runs a program of the image (its path inside the image), with the arguments given.
in_image() { local b=$1; shift; "${image_argv[@]}" "$bin_prefix$b" "$@"; }
entry=/usr/local/bin/taskhost
out=$(in_image "$entry" --version) || k8s_die "the image's entrypoint does not run: $entry --version"
[[ $out == "taskhost $version" ]] || k8s_die "$entry --version printed '$out', expected 'taskhost $version'"
in_image "$entry" serve --help | grep -q -- '--components-dir' || k8s_die "$entry serve --help does not list --components-dir"
cat >"$root/tmp/event.json" <<'JSON'
{"event_id":"img-check-1","event_type":"task.completed","event_timestamp":"2027-01-31T10:00:00Z","user_id":"u1",
 "task":{"id":"t1","user_id":"u1","title":"Pay rent","is_completed":true,"priority":"medium","due_date":"2027-01-31T09:00:00Z",
 "is_recurring":true,"recurrence_frequency":"monthly","tags":[],"created_at":"2027-01-01T00:00:00Z","updated_at":"2027-01-31T10:00:00Z"}}
JSON
chmod 644 "$root/tmp/event.json"
for c in recurrence notification audit sync; do
    in_image "$entry" invoke "$prefix/opt/taskhost/components/$c.wasm" --topic task-events --event "$prefix/tmp/event.json" \
        --now 2027-01-31T10:00:00Z --no-cache >"$check/invoke-$c.json" 2>"$check/invoke-$c.err" ||
        { cat "$check/invoke-$c.err" >&2; k8s_die "the image's taskhost could not run its $c component"; }
done
grep -q '2027-02-28' "$check/invoke-recurrence.json" || k8s_die "recurrence did not create the next instance (2027-02-28): $(cat "$check/invoke-recurrence.json")"
# serve: SQLite in the image's /tmp, the image's components, the image's cache dir
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A simple command, not the in_image function: env and chroot exec, so $! is taskhost itself
# (a function in the background is a subshell, and killing it would leave taskhost running).
"${image_argv[@]}" "$bin_prefix$entry" serve --dev --listen "127.0.0.1:$port" --components-dir "$prefix/opt/taskhost/components" \
    --database-url "sqlite://$prefix/tmp/check.db?mode=rwc" >"$check/serve.log" 2>&1 &
serve_pid=$!
ready=""
for _ in $(seq 1 150); do
    if ready=$(curl -sf "http://127.0.0.1:$port/readyz"); then break; fi
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.2
done
health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" 2>/dev/null || true)
kill "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
[[ $ready == *'"ready"'* ]] || { tail -n 20 "$check/serve.log" >&2; k8s_die "the image's taskhost serve did not become ready"; }
[[ $health == 200 ]] || k8s_die "the image's taskhost serve answered /healthz with $health"
k8s_say "image runs ($how): --version '$out'; serve --help; invoke of all 4 components; serve /healthz 200, /readyz -> $ready"
