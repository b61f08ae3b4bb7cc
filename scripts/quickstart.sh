#!/usr/bin/env bash
# The main job: builds refract and the sample guests, starts the daemon on embedded
# SQLite (./refract-data), deploys the samples, appends the help-desk scenario of
# seed 001, shows the resulting documents and leaves the daemon running.
# Re-running it is safe: deploys and appends are idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null || { echo "cannot install the wasm32-wasip2 target" >&2; exit 1; }
cargo build --release -p refract
cargo build --target wasm32-wasip2 --profile guest --target-dir target/guests \
    -p incident-details -p stream-counter -p account-balance -p money-transfer

listen="${REFRACT_LISTEN:-127.0.0.1:4300}"
data="${REFRACT_DATA:-./refract-data}"
export REFRACT_URL="http://$listen"
refract=./target/release/refract

"$refract" serve --data-dir "$data" --listen "$listen" &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do
    "$refract" status >/dev/null 2>&1 && break
    kill -0 $daemon 2>/dev/null || { echo "refract serve exited" >&2; exit 1; }
    sleep 0.1
done

guests=target/guests/wasm32-wasip2/guest
"$refract" deploy "$guests/incident_details.wasm" "$guests/stream_counter.wasm" \
    "$guests/account_balance.wasm" "$guests/money_transfer.wasm"

# incident stream, idempotency key, type, data
scenario='
incident-1001|logged|IncidentLogged|{"customer_id":"customer-7","contact":{"name":"Ada","email":"ada@example.com"},"description":"Printer on fire","logged_by":"agent-1"}
incident-1001|cat|IncidentCategorised|{"category":"Hardware","categorised_by":"agent-1"}
incident-1001|prio|IncidentPrioritised|{"priority":"Critical","prioritised_by":"agent-1"}
incident-1001|assign|AgentAssignedToIncident|{"agent_id":"agent-42"}
incident-1001|resolved|IncidentResolved|{"resolution":"Fixed","resolved_by":"agent-42"}
incident-1001|ack|ResolutionAcknowledgedByCustomer|{"acknowledged_by":"customer-7"}
incident-1001|closed|IncidentClosed|{"closed_by":"agent-42"}
incident-1002|logged|IncidentLogged|{"customer_id":"customer-9","contact":{"name":"Brian"},"description":"VPN drops every hour","logged_by":"agent-2"}
incident-1002|cat|IncidentCategorised|{"category":"Network","categorised_by":"agent-2"}
incident-1002|prio|IncidentPrioritised|{"priority":"High","prioritised_by":"agent-3"}
incident-1002|assign|AgentAssignedToIncident|{"agent_id":"agent-7"}
incident-1002|resolved|IncidentResolved|{"resolution":"Workaround","resolved_by":"agent-7"}
incident-1003|logged|IncidentLogged|{"customer_id":"customer-7","contact":{"name":"Ada"},"description":"Cannot log in","logged_by":"agent-1"}
account-ada|opened|AccountOpened|{"owner":"Ada","initial_balance":10000,"rejects_deposits":false}
account-brian|opened|AccountOpened|{"owner":"Brian","initial_balance":500,"rejects_deposits":false}
account-closed|opened|AccountOpened|{"owner":"Old account","initial_balance":0,"rejects_deposits":true}
transfer-t1|started|TransferStarted|{"transfer_id":"t1","from":"account-ada","to":"account-brian","amount":2500}
transfer-t2|started|TransferStarted|{"transfer_id":"t2","from":"account-brian","to":"account-closed","amount":300}
transfer-t3|started|TransferStarted|{"transfer_id":"t3","from":"account-brian","to":"account-ada","amount":99999}
'
while IFS='|' read -r stream key type payload; do
    [ -n "$stream" ] || continue
    "$refract" append "$stream" --type "$type" --data "$payload" --idempotency-key "$stream-$key" >/dev/null
done <<<"$scenario"

# Wait until every projection has caught up (lag 0).
for _ in $(seq 100); do
    "$refract" status --json | grep -q '"lag":[1-9]' || break
    sleep 0.1
done
for id in incident-1001 incident-1002 incident-1003; do
    echo "incident-details/$id: $("$refract" get incident-details "$id")"
done
for id in account-ada account-brian account-closed; do
    echo "account-balance/$id: $("$refract" get account-balance "$id")"
done
for t in t1 t2 t3; do
    echo "transfer-$t: $("$refract" stream "transfer-$t" | grep -o '"type":"[A-Za-z]*"' | tr '\n' ' ')"
done
"$refract" status
cat <<EOT

refract is running at $REFRACT_URL (data in $data). Try:
  curl $REFRACT_URL/projections
  curl $REFRACT_URL/projections/incident-details/docs/incident-1002
  REFRACT_URL=$REFRACT_URL $refract append incident-1003 --type IncidentCategorised --data '{"category":"Software","categorised_by":"me"}'
Ctrl-C stops it.
EOT
wait $daemon
