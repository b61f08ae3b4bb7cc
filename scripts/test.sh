#!/usr/bin/env bash
# Every test, on both stores: the whole workspace on SQLite, then the end-to-end
# suite and the PostgreSQL backend's own tests on a throwaway PostgreSQL cluster
# (installed from Debian's packages when missing, as root). One backend alone:
#   cargo test --workspace                                              # SQLite
#   REFRACT_TEST_DATABASE_URL=postgres://user@host/postgres \
#       cargo test -p refract --test e2e --lib                          # PostgreSQL
# SKIP_POSTGRES=1 runs SQLite only. Prints a summary line per backend.
set -uo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true

summary() {
    awk -v backend="$1" '/^test result:/ { passed += $4; failed += $6 }
        END { printf "summary (%s): %d passed, %d failed\n", backend, passed, failed }' "$2"
}

status=0
sqlite_log=$(mktemp)
cargo test --workspace 2>&1 | tee "$sqlite_log" || status=$?

pg_log=$(mktemp)
if [ "${SKIP_POSTGRES:-}" != 1 ]; then
    cluster=$(mktemp -d)/pg
    if url=$(bash scripts/pg-cluster.sh start "$cluster"); then
        trap 'bash scripts/pg-cluster.sh stop "$cluster"' EXIT
        REFRACT_TEST_DATABASE_URL=$url cargo test -p refract --lib --test e2e 2>&1 \
            | tee "$pg_log" || status=$?
    else
        echo "error: cannot start PostgreSQL for the second pass" >&2
        status=1
    fi
fi

summary sqlite "$sqlite_log"
[ "${SKIP_POSTGRES:-}" = 1 ] || summary postgres "$pg_log"
rm -f "$sqlite_log" "$pg_log"
exit "$status"
