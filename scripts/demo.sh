#!/bin/bash
# tether's main job, the seed's walk end to end: build training/webapp and training/postgres from
# the Dockerfiles in examples/, run db, run web with -P --link db:db, look at what the link gives web
# (env vars, /etc/hosts), fetch the page through the published port, query PostgreSQL from web
# through the `db` alias, then move db to a new address and watch web's /etc/hosts follow.
# Last, the pair goes to Kubernetes YAML (`tether kube generate`), is validated against the
# Kubernetes schemas, and is played back on tether under other names (`tether kube play`), where
# web reaches db through the same DB_PORT_5432_TCP_ADDR variable the link gave it.
# Base images are bootstrapped once with mmdebstrap and every build step is cached, so a second run
# takes seconds. The daemon starts on its own at the first command (root only); if this script
# started it, it stops it again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
tether=.venv/bin/tether
python=.venv/bin/python

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '+ %s\n' "$*"; "$@"; }

started_here=0
$python -c "import socket; socket.socket(socket.AF_UNIX).connect('/run/tether/tether.sock')" \
  2>/dev/null || started_here=1
kube_yaml=$(mktemp --suffix=.yaml)
cleanup() {
  $tether kube down "$kube_yaml" >/dev/null 2>&1 || true
  rm -f "$kube_yaml"
  $tether rm -f web db filler >/dev/null 2>&1 || true
  if [ "$started_here" = 1 ] && [ -f /run/tether/tetherd.pid ]; then
    kill "$(cat /run/tether/tetherd.pid)" 2>/dev/null || true
  fi
}
trap cleanup EXIT
$tether rm -f web db filler >/dev/null 2>&1 || true

step "Base images (made once, offline from then on)"
have_image() { [ -n "$($tether images -q "$1")" ]; }
have_image busybox:latest || show $tether image bootstrap busybox
have_image tether-demo/python-base:bookworm ||
  show $tether image bootstrap debian --include python3,python-is-python3,postgresql-client \
    -t tether-demo/python-base:bookworm
have_image tether-demo/postgres-base:bookworm ||
  show $tether image bootstrap debian --include postgresql -t tether-demo/postgres-base:bookworm

step "Build the seed's images from examples/ (a second run uses the cache at every step)"
show $tether build -t training/webapp examples/webapp
show $tether build -t training/postgres examples/postgres

step "Run the database, then the web app linked to it"
show $tether run -d --name db training/postgres
show $tether run -d -P --name web --link db:db training/webapp python app.py
show $tether ps -l

step "The published port"
show $tether port web 5000
port=$($tether port web 5000 | sed -n '1s/.*://p')
printf '+ GET http://127.0.0.1:%s/\n' "$port"
page=$($python - "$port" <<'EOF'
import sys, time, urllib.request
for _ in range(100):
    try:
        print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=2).read().decode())
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the web app did not answer")
EOF
)
echo "$page"
[ "$page" = "Hello world!" ]

step "What the link gives web: environment variables and /etc/hosts"
show $tether exec web sh -c 'env | grep ^DB_ | sort'
show $tether exec web cat /etc/hosts

step "web reaches PostgreSQL through the db alias"
for _ in $(seq 100); do
  $tether exec web pg_isready -q -h db && break
  sleep 0.2
done
show $tether exec web psql -h db -U postgres -tAc "select 'PostgreSQL ' || current_setting('server_version') || ' answers through the link'"

step "db moves to a new address: web's /etc/hosts follows (its env vars stay, as in Docker)"
show $tether stop db
show $tether run -d --name filler busybox sleep 600
show $tether start db
show $tether inspect -f '{{.NetworkSettings.IPAddress}}' db
show $tether exec web grep -w db /etc/hosts

step "The pair as Kubernetes YAML: the link becomes a Service named db (stderr: what does not carry over)"
show $tether kube generate --service web db -f "$kube_yaml"
cat "$kube_yaml"

step "Validated against the Kubernetes 1.35 schemas (kubernetes-validate, offline)"
show .venv/bin/kubernetes-validate -k 1.35 --strict "$kube_yaml"

step "Played back on tether under other names (<pod>-<container>), db first"
show $tether kube play --replace "$kube_yaml"
show $tether exec web-web sh -c 'env | grep -E "^DB_(PORT|NAME)" | sort'
for _ in $(seq 100); do
  $tether exec web-web sh -c 'pg_isready -q -h "$DB_PORT_5432_TCP_ADDR"' && break
  sleep 0.2
done
show $tether exec web-web sh -c 'psql -h "$DB_PORT_5432_TCP_ADDR" -U postgres -tAc "select '"'"'reached through DB_PORT_5432_TCP_ADDR='"'"' || inet_server_addr()"'
show $tether kube down "$kube_yaml"
