#!/bin/bash
# The reference engine for tether's differential tests: Debian's dockerd 20.10 (package docker.io),
# one engine per NAME, each in a network namespace of its own (named NAME) with its own containerd, data root,
# exec root and containerd namespace, so engines never see each other's containers, bridges or
# firewall rules, nor the host's.
#
#   refdocker.sh start NAME   start the engine, print its socket (unix:///run/ref-NAME.sock)
#   refdocker.sh stop NAME    remove its containers, stop it, remove its namespace and files
#
# REFDOCKER_FLAGS: more dockerd flags at start (e.g. "--ipv6 --fixed-cidr-v6 2001:db8:1::/64").
# Logs: /run/ref-NAME/dockerd.log and containerd.log while the engine runs (removed with it;
# a start that fails prints their ends).
set -eu
action=${1:-}
name=${2:-}
if [ -z "$name" ] || [[ ! "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]]; then
  echo "usage: refdocker.sh start|stop NAME (NAME: letters, digits, _ . -)" >&2
  exit 2
fi
run="/run/ref-$name"                 # dockerd's exec root; containerd's state and socket live in it
data="/var/lib/ref-$name"            # dockerd's data root; containerd's root under it
sock="unix:///run/ref-$name.sock"
pidfile="/run/ref-$name.pid"
ctrd_pidfile="/run/ref-$name-containerd.pid"
ctrd_sock="$run/containerd/containerd.sock"

ensure_packages() {
  command -v dockerd >/dev/null && command -v containerd >/dev/null && command -v docker >/dev/null && return
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends docker.io >/dev/null; }
}

# end a process named by a pid file, politely first; returns once it is gone
end_process() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# unmount whatever is still mounted under a directory, deepest first
unmount_under() {
  awk -v root="$1" '$5 == root || index($5, root "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r target; do umount -l "$target" 2>/dev/null || true; done
}

start() {
  ensure_packages
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "reference engine $name is already running" >&2; exit 1
  fi
  mkdir -p "$run/containerd" "$data/containerd"
  ip netns add "$name" 2>/dev/null || true
  ip -n "$name" link set lo up
  # containerd without its CRI plugin (nothing here speaks Kubernetes), its gRPC socket private
  cat >"$run/containerd/config.toml" <<EOF
version = 2
root = "$data/containerd"
state = "$run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctrd_sock"
EOF
  nsenter --net="/run/netns/$name" containerd --config "$run/containerd/config.toml" \
    >"$run/containerd.log" 2>&1 &
  echo $! >"$ctrd_pidfile"
  for _ in $(seq 100); do [ -S "$ctrd_sock" ] && break; sleep 0.1; done
  # shellcheck disable=SC2086  # REFDOCKER_FLAGS is a list of flags
  nsenter --net="/run/netns/$name" dockerd -H "$sock" --data-root "$data" --exec-root "$run" \
    --pidfile "$pidfile" --containerd "$ctrd_sock" --containerd-namespace "ref-$name" \
    --containerd-plugins-namespace "ref-$name-plugins" ${REFDOCKER_FLAGS:-} >"$run/dockerd.log" 2>&1 &
  for _ in $(seq 150); do
    if DOCKER_HOST="$sock" docker version >/dev/null 2>&1; then echo "$sock"; return 0; fi
    sleep 0.2
  done
  echo "reference engine $name did not come up:" >&2
  tail -n 20 "$run/containerd.log" "$run/dockerd.log" >&2 || true
  stop
  exit 1
}

stop() {
  if [ -S "/run/ref-$name.sock" ]; then
    ids=$(DOCKER_HOST="$sock" timeout 30 docker ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || DOCKER_HOST="$sock" timeout 60 docker rm -f $ids >/dev/null 2>&1 || true
  fi
  end_process "$pidfile"
  end_process "$ctrd_pidfile"
  ip netns del "$name" 2>/dev/null || true
  unmount_under "$data"
  unmount_under "$run"
  rm -rf "$data" "$run" "/run/ref-$name.sock"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: refdocker.sh start|stop NAME" >&2; exit 2 ;;
esac
