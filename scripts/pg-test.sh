#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for taskhost's tests, apart from any other server here.
#
# Usage: scripts/pg-test.sh start [--tls]|stop|url [--tls]
#   start   starts the cluster (creating it on first use), or reuses the running one,
#           and prints its URL: postgres://postgres:postgres@127.0.0.1:PORT/taskhost_test
#   --tls   serve TLS only (ssl=on, pg_hba `hostssl`: plaintext TCP is refused), with a
#           certificate for 127.0.0.1/localhost signed by a CA made here with openssl
#           (TASKHOST_PG_DIR/tls/ca.crt, made once per cluster dir); the URL then ends in
#           ?sslmode=verify-full&sslrootcert=<that ca.crt>
#   stop    stops it (its data stays for the next start)
#   url     prints the URL, whether or not the cluster runs
#
# Environment:
#   TASKHOST_PG_DIR    where the cluster lives (default /tmp/taskhost-pg-test): data/,
#                      server.log and the unix socket
#   TASKHOST_PG_PORT   TCP port on 127.0.0.1 (default 54339)
#   TASKHOST_PG_BIN    PostgreSQL's bin dir (default: the highest /usr/lib/postgresql/*/bin)
#
# As root, the server runs as the 'postgres' user (PostgreSQL refuses to run as root);
# as any other user, it runs as that user, who must own TASKHOST_PG_DIR.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pg_dir=${TASKHOST_PG_DIR:-/tmp/taskhost-pg-test}
port=${TASKHOST_PG_PORT:-54339}
data=$pg_dir/data
log=$pg_dir/server.log
tls_dir=$pg_dir/tls
tls=0
[[ ${2:-} == --tls ]] && tls=1
[[ -z ${2:-} || $tls == 1 ]] || die "unknown option '${2}' (only --tls)"
database=taskhost_test
url=postgres://postgres:postgres@127.0.0.1:$port/$database

find_bin() {
    if [[ -n ${TASKHOST_PG_BIN:-} ]]; then
        [[ -x $TASKHOST_PG_BIN/postgres ]] || die "no postgres in TASKHOST_PG_BIN=$TASKHOST_PG_BIN"
        printf '%s\n' "$TASKHOST_PG_BIN"
        return
    fi
    local bin
    bin=$(find /usr/lib/postgresql/*/bin -maxdepth 1 -name postgres -type f 2>/dev/null |
        sort -V | tail -n 1)
    [[ -n $bin ]] ||
        die "no PostgreSQL server under /usr/lib/postgresql/*/bin: run scripts/install-tools.sh (or apt-get install postgresql)"
    dirname "$bin"
}

# as_owner CMD...: runs CMD as the user the cluster belongs to, from a directory that
# user can read (the postgres user cannot enter /root, where the repo may be).
as_owner() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Creates the cluster's directory, owned by whoever will run the server.
prepare_dir() {
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 ||
            die "no 'postgres' user to run the server as: apt-get install postgresql creates it"
        mkdir -p "$pg_dir"
        chown postgres: "$pg_dir"
        chmod 700 "$pg_dir"
        as_owner test -w "$pg_dir" ||
            die "the postgres user cannot reach $pg_dir (a parent dir is closed to it): set TASKHOST_PG_DIR to a dir under /tmp"
    else
        mkdir -p "$pg_dir"
        [[ -O $pg_dir ]] || die "$pg_dir belongs to another user: remove it, or set TASKHOST_PG_DIR"
        chmod 700 "$pg_dir"
    fi
}

is_running() { [[ -f $data/PG_VERSION ]] && as_owner "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1; }

# The port the running server listens on: line 4 of postmaster.pid.
running_port() { as_owner sed -n 4p "$data/postmaster.pid"; }

init_cluster() {
    say "creating a PostgreSQL cluster in $data" >&2
    local pwfile=$pg_dir/pwfile
    printf 'postgres\n' >"$pwfile"
    ((EUID == 0)) && chown postgres: "$pwfile"
    # Password auth everywhere, as the host's tests and a real deployment use it.
    quietly as_owner "$bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
        --auth=scram-sha-256 --encoding=UTF8 --locale=C
    rm -f "$pwfile"
}

# A CA and a server certificate for 127.0.0.1 and localhost (v3 extensions, as rustls wants).
make_certs() {
    [[ -f $tls_dir/server.crt ]] && return 0
    command -v openssl >/dev/null || die "--tls needs the openssl CLI"
    mkdir -p "$tls_dir"
    (
        cd "$tls_dir"
        quietly openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=taskhost test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout ca.key -out ca.crt
        quietly openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
            "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
        quietly openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
            -extfile server.ext -out server.crt
        chmod 600 server.key ca.key
        chmod 644 ca.crt server.crt
    )
    ((EUID == 0)) && chown -R postgres: "$tls_dir"
    return 0
}

# Who may connect over TCP: anyone with the password, or (--tls) only over TLS.
write_hba() {
    local kind=host
    ((tls)) && kind=hostssl
    printf '%s\n' "local all all scram-sha-256" "$kind all all 127.0.0.1/32 scram-sha-256" |
        as_owner tee "$data/pg_hba.conf" >/dev/null
}

start() {
    prepare_dir
    [[ -f $data/PG_VERSION ]] || init_cluster
    ((tls)) && make_certs
    # The running server may serve the other mode: a restart reads pg_hba.conf and the options.
    if is_running && [[ $(as_owner cat "$pg_dir/mode" 2>/dev/null || true) != "$tls" ]]; then stop; fi
    write_hba
    printf '%s\n' "$tls" | as_owner tee "$pg_dir/mode" >/dev/null
    if is_running; then
        local actual
        actual=$(running_port)
        [[ $actual == "$port" ]] && return 0
        say "the test cluster runs on port $actual; restarting it on $port" >&2
        stop
    fi
    # A throwaway cluster needs no durability: without fsync the tests run faster.
    local options="-c listen_addresses=127.0.0.1 -c port=$port"
    options+=" -c unix_socket_directories='$pg_dir' -c max_connections=200"
    options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    ((tls)) && options+=" -c ssl=on -c ssl_cert_file='$tls_dir/server.crt' -c ssl_key_file='$tls_dir/server.key'"
    # The port is in Linux's ephemeral range (32768-60999), so the local end of some client's
    # connection can hold it at the moment the server binds, unseen by any listener check:
    # "Address already in use" is tried again, up to 3 attempts.
    local attempt
    for attempt in 1 2 3; do
        # One start's log at a time, so that the tail shown on failure is about this start.
        [[ -f $log ]] && as_owner truncate -s 0 "$log"
        as_owner "$bin/pg_ctl" start -D "$data" -l "$log" -w -t 60 -o "$options" >/dev/null && return 0
        if ((attempt < 3)) && grep -q 'Address already in use' "$log" 2>/dev/null; then
            say "port $port was taken as PostgreSQL started (attempt $attempt); starting it again in 2 s" >&2
            sleep 2
            continue
        fi
        tail -n 20 "$log" >&2 || true
        die "PostgreSQL did not start (is port $port in use? set TASKHOST_PG_PORT); log: $log"
    done
}

create_database() {
    local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres)
    local exists
    exists=$(PGPASSWORD=postgres "${psql[@]}" -tAc "select 1 from pg_database where datname = '$database'")
    [[ $exists == 1 ]] || PGPASSWORD=postgres "${psql[@]}" -c "create database $database"
}

stop() {
    if is_running; then
        quietly as_owner "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60
        say "stopped the test PostgreSQL in $pg_dir" >&2
    else
        say "the test PostgreSQL in $pg_dir is not running" >&2
    fi
}

case "${1:-}" in
    start)
        bin=$(find_bin)
        start
        create_database
        if ((tls)); then say "$url?sslmode=verify-full&sslrootcert=$tls_dir/ca.crt"; else say "$url"; fi
        ;;
    stop)
        bin=$(find_bin)
        stop
        ;;
    url) if ((tls)); then say "$url?sslmode=verify-full&sslrootcert=$tls_dir/ca.crt"; else say "$url"; fi ;;
    -h | --help) sed -n '2,23s/^# \{0,1\}//p' "$0" ;;
    *) die "usage: scripts/pg-test.sh start [--tls]|stop|url [--tls]" ;;
esac
