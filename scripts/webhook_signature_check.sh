#!/usr/bin/env bash
# The Standard Webhooks signatures Rappel makes (the outbound webhooks to the practice software,
# the patients' answers among them, and the requests to an SMS gateway) against the reference
# implementation of the specification: PyPI's `standardwebhooks`, pinned, in a virtual
# environment under ~/.cache made once. The tests that check a signature with Rappel's own signer
# also write each request they checked (RAPPEL_WEBHOOK_DUMP_DIR, see
# crates/test-support/src/signed.rs); here the library signs the same id, timestamp and body
# with the same secret and must find the same signature, and verifies the request as a receiver
# would when its timestamp is within its five minutes of tolerance.
# `scripts/test.sh` runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${XDG_CACHE_HOME:-$HOME/.cache}/rappel/standardwebhooks-1.3.0"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "standardwebhooks==1.3.0"
fi
DUMP="$(mktemp -d)"
trap 'rm -rf "$DUMP"' EXIT
export RAPPEL_WEBHOOK_DUMP_DIR="$DUMP"
cargo test --quiet -p rappel-server --test answers --test two_way --test templates >/dev/null
cargo test --quiet -p rappel-channels --test sms -- standard_webhooks >/dev/null
"$VENV/bin/python" - "$DUMP" <<'PY'
import json, pathlib, sys, time
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook

files = sorted(pathlib.Path(sys.argv[1]).glob("*.json"))
assert files, "no signed request was written"
failed = verified = 0
for path in files:
    r = json.load(open(path))
    hook = Webhook(r["secret"])
    at = datetime.fromtimestamp(int(r["webhook-timestamp"]), tz=timezone.utc)
    expected = hook.sign(r["webhook-id"], at, r["body"])
    if expected != r["webhook-signature"]:
        failed += 1
        print(f"{path.name}: signature {r['webhook-signature']} != {expected}")
        continue
    if abs(time.time() - int(r["webhook-timestamp"])) < 300:
        headers = {k: r[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        try:
            hook.verify(r["body"], headers)
            verified += 1
        except Exception as error:  # the library's WebhookVerificationError
            failed += 1
            print(f"{path.name}: {error}")
print(f"webhook_signature_check: {len(files)} signed requests, {verified} verified as received, {failed} errors")
sys.exit(1 if failed else 0)
PY
