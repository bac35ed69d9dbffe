#!/usr/bin/env bash
# Install what this repository's commands need on a fresh Debian 12 machine
# that has only python3, git and root: the venv module, debootstrap, make, PostgreSQL
# 15's server binaries, Node.js and npm (the Docker engine comes from
# scripts/testbed/ensure-docker.sh). Idempotent: a machine that has everything is
# left alone.
set -euo pipefail
need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v make >/dev/null 2>&1 || need+=(make)
# tests/unit/test_pg_hugepages.py checks pg_hugepages against PostgreSQL 15's own
# `postgres -C shared_memory_size_in_huge_pages` on a throwaway initdb (it fails
# under CI without them). Debian's package also creates cluster 15/main; where
# systemd runs, it starts it.
{ [ -x /usr/lib/postgresql/15/bin/postgres ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; } || need+=(postgresql-15)
# npm: scenario redis_cluster installs ioredis from the npm registry to connect as an application does
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "bootstrap-host: please install: ${need[*]}" >&2; exit 1; }
  echo "bootstrap-host: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
