#!/usr/bin/env bash
# Sends a signed webhook to the demo tenant of a running `make run`.
#   scripts/send-webhook.sh '{"type":"order.created","id":"o-1"}'
set -euo pipefail
body=${1:-'{"type":"order.created","id":"o-1"}'}
url=${GREENTIC_INGRESS_URL:-http://127.0.0.1:8080}/v1/webhooks/demo/generic
secret=${GREENTIC_DEMO_SECRET:-demo-secret}
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -hex | sed 's/^.* //')
curl -sS -i -X POST "$url" \
  -H 'Content-Type: application/json' \
  -H "X-Greentic-Signature: sha256=$sig" \
  --data-binary "$body"
echo
