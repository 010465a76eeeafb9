#!/bin/bash
# tether's main job, end to end: make the busybox image offline, run a container, show it in `ps`
# and read its output. The daemon starts on its own at the first command (root only).
set -euo pipefail
cd "$(dirname "$0")/.."
tether=.venv/bin/tether
# the first tether command starts tetherd when it is not running; if this demo started it, stop it
# again at the end so that the demo leaves the machine as it found it
started_here=0
.venv/bin/python -c "import socket; socket.socket(socket.AF_UNIX).connect('/run/tether/tether.sock')" \
  2>/dev/null || started_here=1
echo "+ tether image bootstrap busybox"; $tether image bootstrap busybox
name="demo-$$"
echo "+ tether run -d --name $name busybox sh -c 'echo hello from \$(hostname); sleep 30'"
$tether run -d --name "$name" busybox sh -c 'echo hello from $(hostname); sleep 30'
cleanup() {
  $tether rm -f "$name" >/dev/null
  if [ "$started_here" = 1 ] && [ -f /run/tether/tetherd.pid ]; then
    kill "$(cat /run/tether/tetherd.pid)" 2>/dev/null || true
  fi
}
trap cleanup EXIT
echo "+ tether ps"; $tether ps
sleep 0.3
echo "+ tether logs $name"; $tether logs "$name"
echo "+ tether run --rm busybox sh -c 'exit 3'  (exit code passes through)"
set +e; $tether run --rm busybox sh -c 'exit 3'; code=$?; set -e
echo "exit code: $code"
