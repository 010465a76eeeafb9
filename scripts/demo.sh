#!/bin/bash
# tether's main job, end to end: make the busybox image offline, run a container, show it in `ps`
# and read its output. The daemon starts on its own at the first command (root only).
set -euo pipefail
cd "$(dirname "$0")/.."
tether=.venv/bin/tether
echo "+ tether image bootstrap busybox"; $tether image bootstrap busybox
name="demo-$$"
echo "+ tether run -d --name $name busybox sh -c 'echo hello from \$(hostname); sleep 30'"
$tether run -d --name "$name" busybox sh -c 'echo hello from $(hostname); sleep 30'
trap '$tether rm -f "$name" >/dev/null' EXIT
echo "+ tether ps"; $tether ps
sleep 0.3
echo "+ tether logs $name"; $tether logs "$name"
echo "+ tether run --rm busybox sh -c 'exit 3'  (exit code passes through)"
set +e; $tether run --rm busybox sh -c 'exit 3'; code=$?; set -e
echo "exit code: $code"
