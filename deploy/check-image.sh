#!/usr/bin/env bash
# Build the image and try it as a newsroom would: migrate, add a fund, serve, acknowledge a
# signed Stripe event (and its repeat), let the worker apply it, stop the worker with SIGTERM.
#
#   DATABASE_URL=postgresql://user@host:5432/scratch deploy/check-image.sh
#
# DATABASE_URL: a PostgreSQL database the containers reach (it is migrated and written to: use
# a scratch one). Optional: ENGINE (default docker; "podman" works too, with any global flags),
# RUN_FLAGS (extra flags for every `run`), REDIS_URL, PORT (default 8765). The containers use
# the host's network, so 127.0.0.1 in the URLs is the host. Exits non-zero on the first failure.
set -Eeuo pipefail

ENGINE=${ENGINE:-docker}
RUN_FLAGS=${RUN_FLAGS:-}
PORT=${PORT:-8765}
IMAGE=donations:check
SECRET=whsec_image_check
: "${DATABASE_URL:?set DATABASE_URL to a scratch PostgreSQL database}"
cd "$(dirname "$0")/.."

secret_key=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
env_file=$(mktemp)
cleanup() {
    rm -f "$env_file"
    $ENGINE rm -f donations-check-app donations-check-worker >/dev/null 2>&1 || true
}
show_logs() {
    echo "FAILED at line $1; the containers' last lines:" >&2
    for name in donations-check-app donations-check-worker; do
        $ENGINE logs --tail 30 "$name" >&2 2>&1 || true
    done
}
trap 'show_logs $LINENO' ERR
trap cleanup EXIT
cat >"$env_file" <<EOF
DONATIONS_CONFIG=production
DATABASE_URL=$DATABASE_URL
REDIS_URL=${REDIS_URL:-}
SMTP_URL=smtp://127.0.0.1:9
SECRET_KEY=$secret_key
PUBLIC_URL=http://127.0.0.1:$PORT
TRUSTED_HOSTS=127.0.0.1,localhost
STRIPE_SECRET_KEY=sk_test_image_check
STRIPE_WEBHOOK_SECRET=$SECRET
STRIPE_API_BASE=http://127.0.0.1:9
BIND=127.0.0.1:$PORT
WEB_CONCURRENCY=2
EOF

step() { printf '\n== %s\n' "$*"; }
run() { $ENGINE run --rm --network host $RUN_FLAGS --env-file "$env_file" "$@"; }

step "build"
$ENGINE build -t "$IMAGE" .

step "the image's user is not root"
user=$(run --entrypoint id "$IMAGE" -u)
[ "$user" != 0 ] || { echo "runs as root"; exit 1; }
echo "uid $user"

step "migrate, add a fund and a gift source"
run --entrypoint flask "$IMAGE" --app wsgi db upgrade
run --entrypoint flask "$IMAGE" --app wsgi funds add image-check --name "Image check" --default
run --entrypoint flask "$IMAGE" --app wsgi payments gift-sources add metadata:campaign=image-check

step "serve (gunicorn) and work (flask worker)"
$ENGINE run -d --name donations-check-app --network host $RUN_FLAGS --env-file "$env_file" "$IMAGE"
$ENGINE run -d --name donations-check-worker --network host $RUN_FLAGS --env-file "$env_file" \
    --entrypoint flask "$IMAGE" --app wsgi worker
for _ in $(seq 60); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
    sleep 1
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { $ENGINE logs donations-check-app; exit 1; }

step "a signed event, acknowledged, then its repeat"
now=$(date +%s)
event_id="evt_check$now"
body='{"id":"'$event_id'","object":"event","type":"checkout.session.completed","created":'$now',"livemode":false,"data":{"object":{"id":"cs_check'$now'","object":"checkout.session","mode":"payment","payment_status":"paid","status":"complete","amount_total":2500,"currency":"usd","customer_details":{"email":"reader@example.org","name":"A Reader"},"metadata":{"campaign":"image-check"}}}}'
signature=$(printf '%s' "$now.$body" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')
post() {
    curl -sf -X POST "http://127.0.0.1:$PORT/stripe/webhook" -H "Content-Type: application/json" \
        -H "Stripe-Signature: t=$now,v1=$signature" --data-binary "$body"
}
answer=$(post)
echo "$answer"
grep -q '"received":"stored"' <<<"$answer"
answer=$(post)
echo "$answer"
grep -q '"received":"duplicate"' <<<"$answer"

step "the worker applies it"
for _ in $(seq 30); do
    health=$(curl -sf "http://127.0.0.1:$PORT/healthz" || true)
    python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1] or "{}").get("events_waiting") == 0 else 1)' "$health" && break
    sleep 1
done
echo "$health" | python3 -c 'import json,sys; h=json.load(sys.stdin); print("events waiting:", h["events_waiting"], "| schedules:", ", ".join(sorted(h["schedules"])))'
python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["events_waiting"] == 0 else 1)' "$health"

gift=$(run --entrypoint python "$IMAGE" -c '
import sys
from sqlalchemy import select
from wsgi import app
from donations.extensions import db
from donations.ledger.models import Gift
with app.app_context():
    gift = db.session.execute(select(Gift.amount_cents, Gift.status).where(Gift.stripe_checkout_session_id == sys.argv[1])).one()
    print(gift.amount_cents, gift.status)
' "cs_check$now")
echo "the gift: $gift"
grep -q '^2500 ' <<<"$gift"

step "SIGTERM: the worker finishes the job in hand and exits 0"
$ENGINE stop -t 60 donations-check-worker >/dev/null
status=$($ENGINE inspect -f '{{.State.ExitCode}}' donations-check-worker)
echo "worker exit code $status"
[ "$status" = 0 ]

step "the image works"
