#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
#   - installs Debian's docker.io when dockerd is missing;
#   - starts dockerd in the background when it is not running (no systemd
#     needed: CI machines and build sandboxes often have none);
#   - leaves a running engine alone.
# Idempotent; safe to call before every test run.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "dockerd is missing and we are not root: install docker.io"; exit 1; }
  log "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    log "starting docker.service"
    systemctl start docker || true
  fi
fi

if ! docker info >/dev/null 2>&1; then
  logfile=${ONPREM_DOCKERD_LOG:-/var/log/onprem-dockerd.log}
  # A machine restored from a snapshot keeps /var/run: a pid file whose process is gone makes
  # dockerd (and its containerd) refuse to start. Remove only pid files of dead processes.
  for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    if [ -s "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      log "removing stale $pidfile"
      rm -f "$pidfile"
    fi
  done
  log "starting dockerd (log: $logfile)"
  # setsid: the daemon outlives this script and the make process.
  setsid nohup dockerd >"$logfile" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi

docker info >/dev/null 2>&1 || { log "Docker engine did not come up; see ${ONPREM_DOCKERD_LOG:-/var/log/onprem-dockerd.log}"; exit 1; }
log "Docker engine is running"
