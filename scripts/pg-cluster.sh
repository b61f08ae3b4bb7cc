#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `start DIR` installs PostgreSQL from
# Debian's packages when missing (as root), creates a cluster in DIR on a free port
# and prints its URL; `stop DIR` stops it and removes DIR.
set -euo pipefail
cmd=${1:?usage: pg-cluster.sh start|stop DIR}
dir=${2:?usage: pg-cluster.sh start|stop DIR}

bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

# PostgreSQL refuses to run as root: as root, run it as the postgres user.
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
    bin=$(bin_dir)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "PostgreSQL is not installed (apt-get install postgresql, as root)" >&2
            exit 1
        fi
        echo "installing PostgreSQL from Debian's packages..." >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
        bin=$(bin_dir)
    fi
    # The package may start a cluster of its own: not ours, left alone.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        # The postgres user must reach the directory (mktemp makes its parent 0700).
        chmod a+rx "$(dirname "$dir")"
        chown postgres:postgres "$dir"
    fi
    as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >"$dir.initdb.log" 2>&1 || {
        cat "$dir.initdb.log" >&2
        exit 1
    }
    # Many tests run side by side, each daemon with a pool of its own.
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/log.txt" -w start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=500 \
            -c shared_buffers=256MB -c synchronous_commit=on" >&2
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    bin=$(bin_dir)
    if [ -n "$bin" ] && [ -f "$dir/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir" -m immediate stop >&2 || true
    fi
    rm -rf "$dir" "$dir.initdb.log"
    ;;
*)
    echo "usage: pg-cluster.sh start|stop DIR" >&2
    exit 2
    ;;
esac
