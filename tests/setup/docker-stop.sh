#!/usr/bin/env bash
# Stops what tests/setup/docker.sh started: the private dockerd and the registry on 127.0.0.1:30000.
# Keeps images, registry storage and the cached rootfs unless --purge is given
# (--purge removes /var/lib/union-test; the debootstrap cache in /var/cache/union-test stays).
set -euo pipefail
STATE=/var/lib/union-test
RUN=/run/union-test

PURGE=0
for arg in "$@"; do
  case "$arg" in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "docker-stop.sh: unknown argument \`$arg\`" >&2; exit 2 ;;
  esac
done

log() { echo "docker-stop.sh: $*" >&2; }

stop_pid() { # stop_pid NAME PIDFILE SECONDS
  local name=$1 pidfile=$2 secs=$3 pid i
  [ -f "$pidfile" ] || { log "$name: not running (no $pidfile)"; return 0; }
  pid=$(cat "$pidfile")
  if ! kill -0 "$pid" 2>/dev/null; then
    log "$name: not running (stale pid $pid)"; rm -f "$pidfile"; return 0
  fi
  kill -TERM "$pid"
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { log "$name (pid $pid) stopped"; rm -f "$pidfile"; return 0; }
    sleep 0.1
  done
  log "$name (pid $pid) did not stop in ${secs} s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

stop_pid registry "$RUN/registry.pid" 10
stop_pid dockerd "$RUN/dockerd.pid" 30
rm -f "$RUN/docker.sock"

if [ "$PURGE" = 1 ]; then
  # Overlay mounts of stopped containers are gone with dockerd; unmount leftovers before removing.
  grep -o " $STATE/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$STATE"
  log "removed $STATE"
fi
