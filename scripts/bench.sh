#!/usr/bin/env bash
# make bench: the figures of issue 10 item 6, measured side by side in one run and printed as a
# table (also written to .cache/bench/<timestamp>.txt). Nothing is asserted on the figures; the
# targets are printed next to them.
#   1. playbooks/site.yml on fresh containers: time; then a no-op re-run: time and changed count;
#      for each, the module runs on the hosts and on the controller (callback module_runs)
#   2. pgbench TPS on the same container and data: our settings vs Debian's defaults vs PGTune's
#      output alone (the onprem.datastores.pg_tune filter for the same memory plan); on a Patroni
#      member with Patroni paused, each configuration in postgresql.auto.conf (read last) and
#      PostgreSQL restarted through Patroni's REST API
#   2b. pgfailover: PostgreSQL's failover and switchover as a client sees them (issue 20 item 9):
#      writer.py (psycopg2, on the monitoring host) commits a row at a time through the read-write
#      endpoints while the primary's container is killed (seconds until writes are accepted again,
#      target <= 30 s, seed 003 60 s; acknowledged writes lost, target 0; seconds until the old
#      primary streams again after docker start), then while playbooks/promote.yml hands the
#      primary back to it (longest write pause, target <= 10 s)
#   3. redis-benchmark SET/GET through TLS with the application's ACL user on a cluster primary vs a
#      default redis-server (no TLS, no ACL) started for the bench on a spare port of the same host
#   4. redisfailover: the write outage a client (redis-py's RedisCluster) sees while a host that
#      serves 2 of the 6 primaries is stopped (SIGSTOP), with the role's default
#      cluster-node-timeout, target <= 15 s (Azure's unplanned failover: 10-15 s); then the pause
#      it sees while CLUSTER FAILOVER moves those primaries back (a planned switchover)
#   5. pgBackRest full backup and restore (into a scratch directory) vs a raw copy of the data
#      directory on the same disk, in MB/s
# The hosts are those of inventories/sandbox, run as their own containers (prefix onprem-bench-,
# network onprem-bench, inventory .cache/bench/inventory with its own secrets and CA) so that a
# running sandbox is left alone. The PostgreSQL primary's container is limited to the memory of
# the VM its plan is for (BENCH_PG_MEMORY) and pgbench's data set is about twice that, so the
# page cache cannot hold it as the whole machine's would. Everything the bench changes is
# put back (the converge is re-run at the end and must report 0 changed), and the containers are
# removed at the end unless BENCH_KEEP=1.
#
# Environment (defaults in brackets):
#   BENCH_KEEP=1             keep the bench containers afterwards [0]
#   BENCH_FRESH=0            reuse kept bench containers: no fresh-converge figure [1]
#   BENCH_STEPS              which parts to run ["converge pgbench pgfailover redis redisfailover backup
#                            recheck"]
#   BENCH_PG_MEMORY          memory limit of the PostgreSQL primary's container in MB, or none
#                            [the plan's VM: postgresql_memory_mb + memory_budget's OS reserve,
#                            1536 for the sandbox's 1024]
#   BENCH_PGBENCH_SCALE      pgbench scale factor, ~15 MB each [twice the container limit, to
#                            tens: 200 (~3 GB) for 1536 MB]
#   BENCH_PGBENCH_CLIENTS    clients of every run [8]
#   BENCH_PGBENCH_SECONDS    length of every measured run [30]
#   BENCH_PGBENCH_WARMUP     unmeasured run after each restart, seconds [10]
#   BENCH_PGBENCH_RUNS       measured runs per configuration (interleaved) [3]
#   BENCH_PGBENCH_VARIANTS   extra configurations to measure beside the three, to find what a
#                            setting costs: space-separated BASE+name=value[+name=value...], BASE
#                            one of ours, default, pgtune; e.g. "ours+wal_compression=off
#                            default+wal_compression=lz4" (values as in postgresql.conf; not
#                            the settings Patroni passes on the command line, max_connections etc.) []
#   BENCH_REDIS_REQUESTS     requests per redis-benchmark test [200000]
#   BENCH_REDIS_CLIENTS      redis-benchmark clients [50]
#   BENCH_REDIS_RUNS         runs per server and command (median kept) [3]
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=${BENCH_KEEP:-0}
FRESH=${BENCH_FRESH:-1}
STEPS=" ${BENCH_STEPS:-converge pgbench pgfailover redis redisfailover backup recheck} "
PG_MEMORY=${BENCH_PG_MEMORY:-}         # empty: derived from the plan (pg_memory)
PG_SCALE=${BENCH_PGBENCH_SCALE:-}      # empty: derived from the limit (pg_memory)
PG_CLIENTS=${BENCH_PGBENCH_CLIENTS:-8}
PG_SECONDS=${BENCH_PGBENCH_SECONDS:-30}
PG_WARMUP=${BENCH_PGBENCH_WARMUP:-10}
PG_RUNS=${BENCH_PGBENCH_RUNS:-3}
PG_VARIANTS=${BENCH_PGBENCH_VARIANTS:-}
REDIS_REQUESTS=${BENCH_REDIS_REQUESTS:-200000}
REDIS_CLIENTS=${BENCH_REDIS_CLIENTS:-50}
REDIS_RUNS=${BENCH_REDIS_RUNS:-3}

SOURCE_INV=inventories/sandbox
WORK=.cache/bench
INV=$WORK/inventory
PREFIX=onprem-bench-
APT_CACHE=${ONPREM_APT_CACHE:-/var/cache/onprem-datastores/apt-archives}
STAMP=$(date +%Y%m%dT%H%M%S)
REPORT=$WORK/$STAMP.txt
ROWS=$WORK/$STAMP.rows
SCRATCH=/var/tmp/onprem-bench          # inside the containers
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
# scripts/sandbox.sh drives the containers, pointed at the bench's inventory, network and label.
export ONPREM_SANDBOX_INV=$INV ONPREM_SANDBOX_NET=onprem-bench ONPREM_SANDBOX_PREFIX=$PREFIX \
  ONPREM_SANDBOX_LABEL=org.onprem.bench=1 ONPREM_APT_CACHE=$APT_CACHE/bench

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
step() { [[ "$STEPS" == *" $1 "* ]]; }
# row METRIC VALUE TARGET NOTE: one line of the final table.
row() { printf '%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" >>"$ROWS"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- The bench inventory: the sandbox's hosts and group_vars under the bench's prefix -----------
make_inventory() {
  local f
  mkdir -p "$INV"
  sed 's/onprem-sbx-/'"$PREFIX"'/g' "$SOURCE_INV/hosts.yml" >"$INV/hosts.yml"
  # The sandbox's group_vars (memory budgets, users), linked file by file: what git ignores there
  # (generated secrets, vault password, CA) is the bench's own, generated beside the links.
  find "$INV" -type l -delete
  git ls-files --cached --others --exclude-standard -- "$SOURCE_INV/group_vars" | while read -r f; do
    [ -e "$f" ] || continue
    mkdir -p "$(dirname "$INV/${f#"$SOURCE_INV"/}")"
    ln -s "$PWD/$f" "$INV/${f#"$SOURCE_INV"/}"
  done
}

# Generated secrets are Vault-encrypted with the password file scripts/sandbox.sh creates beside
# the inventory on its first run; the bench's own Ansible calls read them with it.
vault_env() {
  if [ -s "$INV/vault-password" ]; then export ANSIBLE_VAULT_PASSWORD_FILE=$PWD/$INV/vault-password; fi
}

# Facts about the inventory: PostgreSQL primary, a Redis host, their containers and settings.
read_inventory() {
  local out
  vault_env
  out=$(ansible-inventory -i "$INV/hosts.yml" --list 2>/dev/null | python3 -c '
import json, sys
inv = json.load(sys.stdin)
hv = inv.get("_meta", {}).get("hostvars", {})
def hosts(group):
    g = inv.get(group, {})
    return g.get("hosts", []) + [h for c in g.get("children", []) for h in hosts(c)]
pg = hosts("postgresql")
primary = [h for h in pg if hv[h].get("postgresql_replication_role") == "primary"] or pg[:1]
redis = hosts("redis")
if not primary or not redis:
    sys.exit("the inventory needs a host in group postgresql and one in group redis")
p, r = primary[0], redis[0]
for h in (p, r):
    if not str(hv[h].get("ansible_host", h)).startswith(sys.argv[1]):
        sys.exit(f"{h}: ansible_host does not use the onprem-sbx- prefix of the sandbox inventory")
pc, rc = hv[p].get("ansible_host", p), hv[r].get("ansible_host", r)
# The plan as the inventory pins it (a number); a template or nothing leaves it empty.
plan = str(hv[p].get("postgresql_memory_mb", ""))
plan = plan if plan.isdigit() else ""
print(f"PG_HOST={p} PG_C={pc} REDIS_HOST={r} REDIS_C={rc} PG_PLAN_MB={plan}")
print("declare -gA HOST_C=(" + " ".join("[%s]=%s" % (h, v.get("ansible_host", h)) for h, v in sorted(hv.items())) + ")")
print("ALL_HOSTS=\"" + " ".join(sorted(hv)) + "\"")
' "$PREFIX") || die "cannot read $INV"
  eval "$out"
}

# Render variables with Ansible (group_vars templates, secrets) for one host: prints JSON.
render() {
  vault_env
  ANSIBLE_LOAD_CALLBACK_PLUGINS=1 ANSIBLE_STDOUT_CALLBACK=json \
    ansible -i "$INV/hosts.yml" "$1" -m ansible.builtin.debug -a "msg={{ $2 }}" 2>/dev/null |
    python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["plays"][0]["tasks"][0]["hosts"][sys.argv[1]]["msg"]))' "$1"
}
# A role default, read from its defaults/main.yml (for values the inventory does not set).
role_default() {
  python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))[sys.argv[2]])' "roles/$1/defaults/main.yml" "$2"
}
json_get() { python3 -c 'import json, sys; v = json.loads(sys.argv[1]); print(v[sys.argv[2]])' "$1" "$2"; }

# --- The PostgreSQL primary's memory ------------------------------------------------------------
# Without a limit the primary's container has the machine's 24 GB of page cache: any data set is
# read from memory and no memory setting can show in the TPS. The default limit is the VM the plan
# is for: the smallest host that memory_budget (filter_plugins/memory_budget.py, the rule the
# inventories' plans come from) gives postgresql_memory_mb to PostgreSQL alone, i.e. the plan plus
# its OS reserve, the larger of 512 MB and 10 % (1024 + 512 = 1536 MB for the sandbox). The plan is
# PostgreSQL's own: shared_buffers, the backends and the page cache effective_cache_size counts on.
# The reserve holds what the VM's OS would, and in the container more: systemd and journald, the
# node and PostgreSQL exporters, pgBackRest's TLS server and its async archive-push, and pgbench
# and psql themselves (pg() runs them with docker exec, which puts them in the container's cgroup;
# 8 clients in 2 threads), plus the kernel memory a cgroup is charged for (sockets, dentries).
# That is expected to stay well under 512 MB (not measured); what it leaves is page cache, as on
# the VM.
pg_memory() {
  [ -n "$PG_PLAN_MB" ] || die "postgresql_memory_mb must be pinned to a number for $PG_HOST in the inventory (the bench sizes the container and the data set from it)"
  PG_VM_MB=$(python3 - "$PG_PLAN_MB" <<'EOF'
import sys
sys.path.insert(0, "filter_plugins")
from memory_budget import memory_budget
plan = int(sys.argv[1])
total = plan + 512  # memory_budget's smallest reserve; grow until its share is the plan
while memory_budget(total)["postgresql_mb"] < plan:
    total += 1
print(total)
EOF
) || die "cannot derive the container's memory from postgresql_memory_mb=$PG_PLAN_MB (memory_budget)"
  case $PG_MEMORY in
    "") PG_MEM_MB=$PG_VM_MB
        PG_MEM_NOTE="the plan's VM: $PG_PLAN_MB MB plan + memory_budget's $((PG_VM_MB - PG_PLAN_MB)) MB OS reserve" ;;
    none) PG_MEM_MB=0
          PG_MEM_NOTE="none (BENCH_PG_MEMORY=none): the page cache is the machine's" ;;
    *) PG_MEM_MB=$PG_MEMORY
       PG_MEM_NOTE="BENCH_PG_MEMORY; the plan's VM would be $PG_VM_MB MB" ;;
  esac
  # The variable scripts/sandbox.sh reads; set even when empty, so a value in the caller's
  # environment (for their sandbox) does not reach the bench's containers.
  export ONPREM_SANDBOX_MEMORY=""
  [ "$PG_MEM_MB" = 0 ] || ONPREM_SANDBOX_MEMORY="$PG_HOST=${PG_MEM_MB}m"
  # pgbench's data set about twice the limit (~15 MB per scale unit), so at most half of it fits
  # in the page cache, less shared_buffers and the reserve. Without a limit: twice the plan's VM,
  # to compare with a limited run on the same data.
  if [ -z "$PG_SCALE" ]; then
    local base=$PG_MEM_MB
    [ "$base" != 0 ] || base=$PG_VM_MB
    PG_SCALE=$(calc %.0f "2 * $base / 15 / 10")0
  fi
}

# pg_check_memory: the limit asked must be in force before anything is measured (a kept container
# made before keeps the limit it was made with unless scripts/sandbox.sh up ran since). Docker's
# record, then what the kernel applies: the smallest memory limit on the way from the postmaster's
# cgroup to the root (cgroup v2 memory.max or v1 memory.limit_in_bytes; the containers use the
# host's cgroup namespace and /sys/fs/cgroup, so the paths in /proc/PID/cgroup are found there).
pg_check_memory() {
  local want got swap pid kernel
  want=$((PG_MEM_MB << 20))
  got=$(docker inspect -f '{{.HostConfig.Memory}}' "$PG_C")
  [ "$got" = "$want" ] || die "$PG_C has a memory limit of $got bytes, not the $want asked ($PG_MEM_MB MB; 0 = none):" \
    "recreate the containers (BENCH_FRESH=1), or include the converge step (scripts/sandbox.sh up sets a limit on a kept container; it does not remove one)"
  # --memory-swap equal to the limit means no swap on top; without swap accounting in the kernel
  # docker drops it (MemorySwap -1) with a warning, and the container may swap where the machine can.
  swap=$(docker inspect -f '{{.HostConfig.MemorySwap}}' "$PG_C")
  # The postmaster's PID (under Patroni, the unit's main PID is Patroni's own; same cgroup).
  pid=$(docker exec "$PG_C" head -n 1 "$PG_DATA/postmaster.pid")
  [ -n "$pid" ] || die "no postmaster PID in $PG_DATA/postmaster.pid in $PG_C"
  kernel=$(docker exec -i "$PG_C" python3 - "$pid" <<'EOF'
import os, sys
limits, seen = [], False
for line in open(f"/proc/{sys.argv[1]}/cgroup"):
    _, controllers, path = line.rstrip("\n").split(":", 2)
    if controllers == "":
        root, name = "/sys/fs/cgroup", "memory.max"  # v2
    elif "memory" in controllers.split(","):
        root, name = "/sys/fs/cgroup/" + controllers, "memory.limit_in_bytes"  # v1
    else:
        continue
    d = os.path.normpath(root + path)
    if not os.path.isdir(d):
        continue
    while True:
        f = os.path.join(d, name)
        if os.path.exists(f):
            seen = True
            v = open(f).read().strip()
            if v != "max" and int(v) < 2**62:  # v1 writes "no limit" as about 2^63
                limits.append(int(v))
        if d == root:
            break
        d = os.path.dirname(d)
print(min(limits) if limits else (0 if seen else "unknown"))
EOF
) || die "cannot read the memory cgroup of the postmaster ($PG_SERVICE) in $PG_C"
  if [ "$kernel" = unknown ]; then
    PG_MEM_CHECK="docker's HostConfig.Memory agrees; the postmaster's cgroup was not readable"
    log "warning: $PG_MEM_CHECK"
  elif [ "$kernel" != "$want" ]; then
    die "the kernel limits $PG_SERVICE in $PG_C to $kernel bytes (0 = none), not the $want asked; docker's record says $got"
  elif [ "$want" = 0 ]; then
    PG_MEM_CHECK="checked: no limit in docker's HostConfig.Memory nor on the postmaster's cgroup"
  else
    PG_MEM_CHECK="in force: docker's HostConfig.Memory and the postmaster's cgroup agree"
  fi
  if [ "$want" != 0 ] && [ "$swap" != "$want" ]; then
    PG_MEM_CHECK+="; swap not capped (MemorySwap $swap; the machine's swap: $(awk '/^SwapTotal:/ { print $2 / 1024 " MB" }' /proc/meminfo))"
  fi
  log "pgbench: memory limit of $PG_C: ${PG_MEM_MB} MB (0 = none), $PG_MEM_CHECK"
}

# --- Converge ---------------------------------------------------------------------------------
# module_runs FILE: the note for the JSON line the callback module_runs wrote (see
# scripts/ansible/callback_plugins/module_runs.py): results are ok + changed + failed, loop items
# counted one by one; retries of until loops re-run a module without a result of their own.
module_runs() {
  [ -s "$1" ] || { echo "module runs: not recorded ($1 missing)"; return 0; }
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
note = "module runs on hosts %(host)d, controller %(controller)d, results %(results)d" % r
extra = ["%d %s" % (r[k], k.replace("_", " ")) for k in ("retries", "async_polls") if r.get(k)]
print(note + (" (+ " + ", ".join(extra) + ")" if extra else ""))' "$1" || echo "module runs: not readable in $1"
}

# converge NAME: run scripts/sandbox.sh up (containers + site.yml), log to $WORK/NAME.log;
# sets CONVERGE_SECONDS, CONVERGE_CHANGED (sum of changed= in the play recap) and CONVERGE_RUNS
# (the module runs, counted into $WORK/NAME.runs.json).
converge() {
  local log=$WORK/$1.log runs=$PWD/$WORK/$1.runs.json start
  rm -f "$runs"
  start=$(now)
  # profile_roles and profile_tasks end the log with where the time went (the slowest tasks and
  # roles); module_runs prints nothing and writes its counts to ONPREM_MODULE_RUNS_FILE. The
  # variables reach ansible-playbook through scripts/sandbox.sh, which keeps the environment.
  if ! ANSIBLE_CALLBACK_PLUGINS=$PWD/scripts/ansible/callback_plugins \
    ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_roles,ansible.posix.profile_tasks,module_runs \
    ONPREM_MODULE_RUNS_FILE=$runs PROFILE_TASKS_TASK_OUTPUT_LIMIT=25 \
    scripts/sandbox.sh up >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "converge $1 failed (log: $log)"
  fi
  CONVERGE_SECONDS=$(since "$start")
  CONVERGE_CHANGED=$(awk '/^PLAY RECAP/ { r = 1; next }
    r { for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) { split($i, a, "="); s += a[2] } }
    END { print s + 0 }' "$log")
  CONVERGE_RUNS=$(module_runs "$runs")
  log "converge $1: ${CONVERGE_SECONDS} s, changed=$CONVERGE_CHANGED, $CONVERGE_RUNS"
}

# Seed the bench's apt archive caches from the sandbox's (same host names), so both start warm.
seed_apt_cache() {
  local h debs
  for h in $ALL_HOSTS; do
    mkdir -p "$APT_CACHE/bench/$h"
    if [ -d "$APT_CACHE/$h" ]; then
      find "$APT_CACHE/$h" -maxdepth 1 -name '*.deb' -exec cp -n -t "$APT_CACHE/bench/$h" {} +
    fi
  done
  debs=$(find "$APT_CACHE/bench" -name '*.deb' | wc -l)
  APT_NOTE="apt archive cache: $debs .deb files before the run"
}

step_converge() {
  if [ "$FRESH" = 1 ]; then
    seed_apt_cache
    log "converging playbooks/site.yml on fresh containers ($ALL_HOSTS); log: $WORK/converge-fresh.log"
    converge converge-fresh
    row "site.yml converge, fresh containers" "${CONVERGE_SECONDS} s" "<= 360 s" \
      "$(echo "$ALL_HOSTS" | wc -w) containers, incl. starting them; changed=$CONVERGE_CHANGED; $CONVERGE_RUNS; $APT_NOTE"
  else
    row "site.yml converge, fresh containers" "skipped" "<= 360 s" "BENCH_FRESH=0: kept bench containers reused"
  fi
  log "no-op re-run of site.yml"
  converge converge-noop
  row "site.yml re-run (no-op)" "${CONVERGE_SECONDS} s" "<= 120 s" "changed=$CONVERGE_CHANGED (target 0); $CONVERGE_RUNS"
}

# --- pgbench: ours vs Debian's defaults vs PGTune ----------------------------------------------
# synchronous_commit=local: with the sandbox's synchronous standby every commit would also wait
# for the network; the comparison is about the settings, so the bench's own sessions do not.
pg() { docker exec -u postgres -e PGOPTIONS='-c synchronous_commit=local' "$PG_C" "$@"; }
psql_pg() { pg psql -XAtq -d "${2:-postgres}" -c "$1"; }

# The server's paths, and what runs it. With two or more servers (the sandbox) it is a Patroni
# member: patroni@<version>-<cluster> runs it, Debian's postgresql@ unit must never run beside it,
# and a restart of the patroni unit on the leader would hand the leader key to the standby.
pg_paths() {
  local version cluster
  version=$(render "$PG_HOST" "postgresql_version | default($(role_default postgresql postgresql_version))")
  cluster=$(render "$PG_HOST" "postgresql_cluster_name | default('$(role_default postgresql postgresql_cluster_name)')" | tr -d '"')
  PG_BIN=/usr/lib/postgresql/$version/bin
  PG_VERSION=$version
  PG_CONF_DIR=/etc/postgresql/$version/$cluster
  PG_SETTINGS=$PG_CONF_DIR/conf.d/10-onprem-datastores.conf
  PG_PATRONI_CONF=/etc/patroni/$version-$cluster.yml
  if docker exec "$PG_C" test -f "$PG_PATRONI_CONF"; then
    PG_SERVICE=patroni@$version-$cluster
    PG_SCOPE=$(docker exec "$PG_C" sed -n 's/^scope: *//p' "$PG_PATRONI_CONF" | python3 -c 'import json, sys; print(json.loads(sys.stdin.read()))')
  else
    PG_SERVICE=postgresql@$version-$cluster
    PG_SCOPE=""
  fi
  PG_DATA=$(psql_pg 'SHOW data_directory')
  # The file PostgreSQL reads last, after Patroni's postgresql.conf (which includes conf.d first and
  # then sets Patroni's parameters, so nothing in conf.d overrides them): the bench's configurations
  # go there, after its converged content (saved beside the scratch data).
  PG_AUTO=$PG_DATA/postgresql.auto.conf
  PG_SAVED=$SCRATCH/postgresql.auto.conf.ours
}

# The bench measures on the inventory's primary: Patroni must have left the leader there.
pg_check_primary() {
  [ "$(psql_pg 'SELECT pg_is_in_recovery()')" = f ] ||
    die "$PG_HOST is not the primary (Patroni's leader is another member); hand it back first:" \
      "ANSIBLE_VAULT_PASSWORD_FILE=$INV/vault-password ansible-playbook -i $INV/hosts.yml playbooks/promote.yml -e promote_target=$PG_HOST"
}

# PGTune's settings alone for the inventory's memory plan, as postgresql.conf lines.
pgtune_conf() {
  local expr plan
  for v in postgresql_memory_mb postgresql_cpus; do
    [ "$(render "$PG_HOST" "$v is defined")" = true ] || die "$v must be pinned in the inventory (containers see the whole host)"
  done
  plan="postgresql_memory_mb | int, postgresql_cpus | int, postgresql_workload | default('$(role_default postgresql postgresql_workload)'),
        postgresql_storage | default('$(role_default postgresql postgresql_storage)'),
        postgresql_max_connections | default($(role_default postgresql postgresql_max_connections)) | int"
  PG_PLAN=$(render "$PG_HOST" "[$plan]" | python3 -c 'import json, sys; m, c, w, s, n = json.load(sys.stdin); print(f"{m} MB, {c} CPUs, {w}, {s}, {n} connections")')
  expr="postgresql_memory_mb | int | onprem.datastores.pg_tune(postgresql_cpus | int,
        workload=postgresql_workload | default('$(role_default postgresql postgresql_workload)'),
        storage=postgresql_storage | default('$(role_default postgresql postgresql_storage)'),
        max_connections=postgresql_max_connections | default($(role_default postgresql postgresql_max_connections)) | int,
        pg_version=$PG_VERSION)"
  render "$PG_HOST" "$expr" | python3 -c '
import json, sys
print("# PGTune (onprem.datastores.pg_tune) alone, written by scripts/bench.sh for one comparison.")
for k, v in sorted(json.load(sys.stdin).items()):
    if isinstance(v, bool):
        v = "on" if v else "off"
    elif isinstance(v, str):
        v = "\x27" + v.replace("\x27", "\x27\x27") + "\x27"
    print(f"{k} = {v}")'
}

pg_wait() {
  for _ in $(seq 1 60); do
    pg "$PG_BIN/pg_isready" -q && psql_pg 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "PostgreSQL on $PG_HOST did not come back (see journalctl -u $PG_SERVICE and the server's log in $PG_C)"
}

# patronictl in the member's container, with the member's configuration (etcd's client certificate,
# the REST API's CA and its user for the POSTs).
patronictl_pg() { docker exec "$PG_C" patronictl -c "$PG_PATRONI_CONF" "$@" 2>&1; }

# Maintenance mode for the step (patronictl pause): Patroni then neither starts, stops nor fails over
# by itself, and its leader keeps the leader key while PostgreSQL restarts. Patroni 3.0 rewrites
# postgresql.conf only when it starts PostgreSQL or its own configuration changes, and removes
# nothing from postgresql.auto.conf but recovery settings. Not a Patroni member: nothing to do.
pg_pause() {
  local out
  [ -n "$PG_SCOPE" ] || return 0
  # Already paused: a run cut short before it could resume; this one resumes it at the end.
  out=$(patronictl_pg pause "$PG_SCOPE" --wait) || grep -q 'already paused' <<<"$out" ||
    die "patronictl pause failed on $PG_HOST: $out"
  PG_PAUSED=1
  log "pgbench: Patroni's cluster $PG_SCOPE paused (maintenance mode) for the step"
}

pg_resume() {
  local out
  out=$(patronictl_pg resume "$PG_SCOPE" --wait) || die "patronictl resume failed on $PG_HOST: $out"
  PG_PAUSED=""
  log "pgbench: Patroni's cluster $PG_SCOPE resumed"
}

# A restart of PostgreSQL alone. On a Patroni member through Patroni's REST API (patronictl restart;
# pause allows an immediate restart): the postmaster stays Patroni's child, the leader key stays.
pg_restart() {
  local out
  if [ -n "$PG_SCOPE" ]; then
    out=$(patronictl_pg restart "$PG_SCOPE" "$PG_HOST" --force) && grep -q 'Success: restart on member' <<<"$out" ||
      die "patronictl restart of $PG_HOST failed: $out"
  else
    docker exec "$PG_C" systemctl restart "$PG_SERVICE"
  fi
  pg_wait
}

# The "default" and "pgtune" configurations, as lines for postgresql.auto.conf, from the server as
# converged: every setting of ours (its value from conf.d/10-onprem-datastores.conf or from Patroni's
# postgresql.conf: PGTune's and the replication plan's) back to PostgreSQL's built-in value
# (pg_settings.boot_val, which counts in pg_settings.unit: 1024 for shared_buffers is 1024 x 8kB),
# or to the value Debian's initdb and pg_createcluster write into postgresql.conf where they write one
# (shared_buffers 128MB, as before Patroni). Kept as ours in all three, named in the default row:
# - TLS (ssl*): the standby's replication connection needs it (pgbench uses the Unix socket);
# - what Patroni sets for the cluster to work (hba_file, ident_file, synchronous_standby_names, the
#   recovery settings);
# - the settings Patroni passes on the command line from etcd (max_connections, max_worker_processes,
#   max_wal_senders, ...): no file overrides them, and raising one on the primary alone (Debian's
#   max_worker_processes 8 over PGTune's 2) would stop the standby's replay, which needs values at
#   least the primary's;
# - extension settings (pg_stat_statements.*): inert once shared_preload_libraries is back to ''.
# PGTune's configuration is the default one with the pg_tune filter's output on top (its
# command-line settings aside: they are the ones in force already). Writes $WORK/pg-default.conf and
# $WORK/pg-pgtune.conf; sets PG_DEFAULT_NOTE.
pg_variant_confs() {
  pg psql -XAtq -F $'\t' -d postgres -c "SELECT name, coalesce(unit, ''), boot_val, setting, source
      FROM pg_settings WHERE sourcefile IN ('$PG_SETTINGS', '$PG_CONF_DIR/postgresql.conf') OR source = 'command line'
      ORDER BY name" >"$WORK/pg-settings.tsv"
  python3 - "$WORK/pg-settings.tsv" "$WORK/pgtune.conf" "$WORK/pg-default.conf" "$WORK/pg-pgtune.conf" \
    >"$WORK/pg-default.note" <<'EOF' || die "cannot write the default and PGTune configurations from $WORK/pg-settings.tsv"
import re, sys
settings, pgtune, default_out, pgtune_out = sys.argv[1:]
debian = {"shared_buffers": "128MB", "max_wal_size": "1GB", "min_wal_size": "80MB",
          "log_line_prefix": "%m [%p] %q%u@%d ", "dynamic_shared_memory_type": "posix"}
patroni = {"hba_file", "ident_file", "synchronous_standby_names", "primary_conninfo", "primary_slot_name",
           "restore_command", "recovery_target_timeline", "recovery_min_apply_delay", "archive_cleanup_command",
           "recovery_end_command", "promote_trigger_file"}
own = {"listen_addresses", "port", "cluster_name", "hot_standby"}  # Patroni's own (on the command line too)


def quote(value):
    return "'" + value.replace("'", "''") + "'"


def with_unit(boot, unit):
    """boot_val in the unit pg_settings names ("8kB": 1024 -> 8192kB); a bare number counts in it too."""
    m = re.fullmatch(r"(\d*)(\D+)", unit)
    if not m or not re.fullmatch(r"\d+", boot):
        return boot  # no unit, or a sentinel such as -1
    return str(int(boot) * int(m.group(1) or 1)) + m.group(2)


lines, cmdline, tls = [], {}, 0
for row in open(settings, encoding="utf-8"):
    name, unit, boot, setting, source = row.rstrip("\n").split("\t")
    if source == "command line":
        if name not in own:
            cmdline[name] = with_unit(setting, unit) + ("" if setting == boot else " (default %s)" % with_unit(boot, unit))
    elif name.startswith("ssl"):
        tls += 1
    elif name not in patroni and "." not in name:
        lines.append("%s = %s" % (name, quote(debian.get(name, with_unit(boot, unit)))))
head = "# scripts/bench.sh: our settings back to PostgreSQL's defaults (Debian's postgresql.conf values where it sets one)\n"
with open(default_out, "w", encoding="utf-8") as out:
    out.write(head + "\n".join(lines) + "\n")
tune = [line for line in open(pgtune, encoding="utf-8")
        if not line.startswith("#") and line.split("=")[0].strip() not in cmdline]
with open(pgtune_out, "w", encoding="utf-8") as out:
    out.write(head + "\n".join(lines) + "\n# PGTune's output on top\n" + "".join(tune))
print("%d settings of ours at their defaults; kept as ours: TLS (%d ssl settings; the standby's replication connection) "
      "and the command-line settings from etcd, which no file overrides and the standby must match: %s"
      % (len(lines), tls, ", ".join("%s %s" % kv for kv in sorted(cmdline.items()))))
EOF
  PG_DEFAULT_NOTE=$(cat "$WORK/pg-default.note")
}

# pg_use ours|default|pgtune[+name=value...]: that configuration after the converged content of
# postgresql.auto.conf (the file read last), then a restart. ours: the file as converged. A
# variant's settings come last.
pg_use() {
  local base=${1%%+*} extra="" err
  [ "$base" = "$1" ] || extra=${1#*+}
  {
    case $base in
      default) cat "$WORK/pg-default.conf" ;;
      pgtune) cat "$WORK/pg-pgtune.conf" ;;
    esac
    if [ -n "$extra" ]; then
      echo "# scripts/bench.sh variant $1"
      echo "$extra" | tr '+' '\n' | sed 's/=/ = /'
    fi
  } | docker exec -i "$PG_C" sh -c "cat '$PG_SAVED' - >'$PG_AUTO'"  # an existing file: owner and mode stay
  # A value PostgreSQL refuses, before the restart (a changed setting only a restart applies shows
  # as "setting could not be applied": expected).
  err=$(psql_pg "SELECT string_agg(coalesce(f.name, '?') || ': ' || f.error, '; ')
                   FROM pg_file_settings f LEFT JOIN pg_settings s USING (name)
                  WHERE f.sourcefile = '$PG_AUTO' AND f.error IS NOT NULL
                    AND NOT (f.error = 'setting could not be applied' AND s.context = 'postmaster')")
  [ -z "$err" ] || die "configuration $1: PostgreSQL refuses $PG_AUTO: $err"
  pg_restart
}

# Back to postgresql.auto.conf as converged (a restart only if the bench changed it), then Patroni
# resumed: the cluster as the step found it.
pg_restore_ours() {
  if docker exec "$PG_C" test -f "$PG_SAVED" 2>/dev/null; then
    if ! docker exec "$PG_C" cmp -s "$PG_SAVED" "$PG_AUTO"; then
      log "restoring our PostgreSQL settings"
      pg_use ours
    fi
  fi
  if [ -n "${PG_PAUSED:-}" ]; then pg_resume; fi
}

declare -A PG_MED=() PG_RANGE=()

# Wait until the archiver and the standbys have caught up with the WAL written so far (pgbench -i
# writes about the data set's size, ~3 GB at the default scale, each run hundreds of MB more):
# otherwise archive-push (zst + encryption) and the standby's replay of the previous
# configuration's WAL share the 2 cores with the next run, and whichever configuration comes first
# in a round pays for it. Up to 900 s: the backlog after pgbench -i is minutes of work.
pg_settle() {
  local waited
  for waited in $(seq 0 900); do
    [ "$(psql_pg "SELECT coalesce((SELECT last_archived_wal FROM pg_stat_archiver) >= pg_walfile_name(pg_current_wal_lsn() - 16777216), false)
                    AND coalesce((SELECT bool_and(replay_lsn >= pg_current_wal_lsn() - 16777216) FROM pg_stat_replication), true)")" = t ] && {
      [ "$waited" -lt 5 ] || log "pgbench: waited ${waited} s for the archiver and the standby to catch up"
      return 0
    }
    sleep 1
  done
  die "the archiver or the standby did not catch up within 900 s (pg_stat_archiver, pg_stat_replication on $PG_HOST)"
}

pgbench_tps() {  # pgbench_tps SECONDS: one run of the default TPC-B-like script; prints its TPS
  psql_pg 'SELECT pg_switch_wal()' >/dev/null
  pg_settle
  psql_pg CHECKPOINT >/dev/null
  pg "$PG_BIN/pgbench" -c "$PG_CLIENTS" -j 2 -T "$1" bench 2>&1 |
    awk '/^tps = / { print $3; found = 1 } END { if (!found) exit 1 }'
}

step_pgbench() {
  local start size r v tps note
  declare -A TPS=() SB=()
  pg_paths
  pg_check_primary
  # A configuration an interrupted run left behind would be saved as ours.
  ! docker exec "$PG_C" grep -q '^# scripts/bench.sh' "$PG_AUTO" ||
    die "$PG_AUTO in $PG_C holds a configuration of an interrupted bench run: remove the lines from '# scripts/bench.sh' on and restart PostgreSQL (patronictl -c $PG_PATRONI_CONF restart)"
  pg_check_memory
  pgtune_conf >"$WORK/pgtune.conf"
  pg_variant_confs
  docker exec "$PG_C" install -d -m 0700 "$SCRATCH"
  docker exec "$PG_C" cp -p "$PG_AUTO" "$PG_SAVED"
  # ~15 MB a scale unit; pgbench -i runs at roughly 50 MB/s on the bench's disk (an estimate from
  # the 605 MB loads of the scale-40 runs, 9-12 s without a limit): about a minute at scale 200,
  # maybe more under the limit, where written pages cannot wait in a 24 GB page cache.
  log "pgbench: initialising scale $PG_SCALE (~$((PG_SCALE * 15)) MB, about $((PG_SCALE * 15 / 50)) s at ~50 MB/s, an estimate) in database bench on $PG_HOST (our settings)"
  psql_pg 'DROP DATABASE IF EXISTS bench WITH (FORCE)' >/dev/null 2>&1
  psql_pg 'CREATE DATABASE bench' >/dev/null
  start=$(now)
  pg "$PG_BIN/pgbench" -i -q -s "$PG_SCALE" bench >"$WORK/pgbench-init.log" 2>&1 || { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
  PG_INIT_SECONDS=$(since "$start")
  size=$(psql_pg "SELECT pg_database_size('bench') / 1048576")
  # The target: larger than the container's memory (without a limit, than the plan), so that
  # neither shared_buffers nor the page cache can hold it.
  note="scale $PG_SCALE, loaded in ${PG_INIT_SECONDS} s; $(calc %.1f "$size / $PG_PLAN_MB") x the plan ($PG_PLAN_MB MB)"
  if [ "$PG_MEM_MB" != 0 ]; then
    row "pgbench data set" "${size} MB" "> $PG_MEM_MB MB (limit)" \
      "$note, $(calc %.1f "$size / $PG_MEM_MB") x the container's limit; Debian's shared_buffers is 128MB"
  else
    row "pgbench data set" "${size} MB" "> $PG_PLAN_MB MB (plan)" "$note; no container limit: the machine's page cache holds it"
  fi
  pg_pause
  for r in $(seq 1 "$PG_RUNS"); do
    for v in ours default pgtune $PG_VARIANTS; do
      pg_use "$v"
      SB[$v]=$(psql_pg 'SHOW shared_buffers')
      pg "$PG_BIN/pgbench" -c "$PG_CLIENTS" -j 2 -T "$PG_WARMUP" bench >/dev/null 2>&1
      tps=$(pgbench_tps "$PG_SECONDS") || die "pgbench run failed ($v)"
      TPS[$v]="${TPS[$v]:-} $tps"
      log "pgbench run $r/$PG_RUNS $v (shared_buffers ${SB[$v]}): $tps tps"
    done
  done
  # Our settings back and Patroni resumed before the next step (pgfailover needs Patroni's failover).
  pg_restore_ours
  for v in ours default pgtune $PG_VARIANTS; do
    PG_MED[$v]=$(echo "${TPS[$v]}" | median)
    PG_RANGE[$v]=$(echo "${TPS[$v]}" | tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { printf "%.0f-%.0f", a, b }')
  done
  row "pgbench TPS, our tuning" "$(calc %.0f "${PG_MED[ours]}")" "" \
    "median of $PG_RUNS (${PG_RANGE[ours]}); as converged (conf.d, Patroni's parameters, etcd's); shared_buffers ${SB[ours]}"
  row "pgbench TPS, Debian default" "$(calc %.0f "${PG_MED[default]}")" "" \
    "median of $PG_RUNS (${PG_RANGE[default]}); shared_buffers ${SB[default]}; $PG_DEFAULT_NOTE"
  row "pgbench TPS, PGTune" "$(calc %.0f "${PG_MED[pgtune]}")" "" \
    "median of $PG_RUNS (${PG_RANGE[pgtune]}); pg_tune output over the default configuration; shared_buffers ${SB[pgtune]}"
  row "pgbench ratio ours / default" "$(calc %.2f "${PG_MED[ours]} / ${PG_MED[default]}")" ">= 1.2" ""
  row "pgbench ratio ours / PGTune" "$(calc %.2f "${PG_MED[ours]} / ${PG_MED[pgtune]}")" ">= 1.0" ""
  for v in $PG_VARIANTS; do
    row "pgbench TPS, $v" "$(calc %.0f "${PG_MED[$v]}")" "" \
      "median of $PG_RUNS (${PG_RANGE[$v]}); ${PG_MED[$v]:+$(calc %.2f "${PG_MED[$v]} / ${PG_MED[${v%%+*}]}") x ${v%%+*}}; shared_buffers ${SB[$v]}"
  done
}

# --- PostgreSQL failover and switchover as a client sees them ----------------------------------
# The drill of scenario postgresql (test_50_failover_drill.py) on the bench's hosts: its client
# (molecule/postgresql/tests/clients/writer.py, psycopg2) commits one row at a time as the
# application's user through the read-write endpoints, HAProxy's port on every PostgreSQL server
# (libpq's host list, target_session_attrs=read-write), from the first monitoring host (the
# sandbox's mon1: on the bench network, which pg_hba and HAProxy admit; the controller has no
# psycopg2). python3-psycopg2 is installed there for the step and purged after it. The password is
# in a passfile (0600) in the client's scratch directory, named by the connection string.
# (a) docker kill of the primary's container: seconds until the first write acknowledged after it,
# acknowledged writes missing on the new primary (target 0), then docker start and the seconds
# until it streams again; (b) promote.yml back to the original primary: the longest pause between
# two acknowledged writes. The cluster ends as it began, led by the original primary.
PGF_WRITER=molecule/postgresql/tests/clients/writer.py
PGF_DIR=$SCRATCH/pgfailover  # on the client host

# pgf_json KEY...: the value at that path of the JSON on stdin (a secret never on a command line).
pgf_json() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[k]
print(v)' "$@"
}
pgf_ip() { docker inspect -f '{{ (index .NetworkSettings.Networks "onprem-bench").IPAddress }}' "$1"; }
# pgf_sql CONTAINER SQL [DB]: one query as postgres (the SQL on stdin: the id lists are long).
pgf_sql() { echo "$2" | docker exec -i -u postgres -e PGOPTIONS='-c synchronous_commit=local' "$1" psql -XAtq -d "${3:-postgres}" -f -; }

# The member of group postgresql whose server is not in recovery, among the running containers.
pgf_leader() {
  local h
  for h in $PGF_HOSTS; do
    [ "$(pgf_sql "${HOST_C[$h]}" 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && { echo "$h"; return 0; }
  done
  return 1
}

# pgf_wait SECONDS COMMAND...: run COMMAND every second until it succeeds; false at the deadline.
pgf_wait() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 1
  done
}
pgf_streaming() { [ "$(pgf_sql "$1" 'SELECT status FROM pg_stat_wal_receiver' 2>/dev/null)" = streaming ]; }
# pgf_sync LEADER_C MEMBER: MEMBER is the leader's synchronous standby (promote.yml hands over only to it).
pgf_sync() {
  [ "$(pgf_sql "$1" "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$2' AND sync_state = 'sync' AND state = 'streaming'" 2>/dev/null)" = 1 ]
}

# pgf_start NAME SECONDS: the writer in the background on the client, its PID in NAME.pid, its log
# NAME.log; returns once it has a first acknowledged write.
pgf_start() {
  docker exec -d "$PGF_C" sh -c 'echo $$ >"$1/$2.pid"; exec python3 "$1/writer.py" "$3" "$1/$2.log" "$(cat "$1/conninfo")"' \
    sh "$PGF_DIR" "$1" "$2"
  pgf_wait 30 docker exec "$PGF_C" grep -q '^ok ' "$PGF_DIR/$1.log" ||
    die "pgfailover: the writer had no write acknowledged within 30 s (log: $(docker exec "$PGF_C" tail -n 3 "$PGF_DIR/$1.log" 2>&1))"
}
# pgf_acked_since NAME TIME: the writer had a write acknowledged after TIME (Unix time).
pgf_acked_since() {
  docker exec "$PGF_C" awk -v t="$2" '$1 == "ok" && $3 > t { found = 1 } END { exit !found }' "$PGF_DIR/$1.log"
}
# pgf_stop NAME: stop the writer (by its PID) and copy its log to $WORK/pgfailover-NAME.log.
pgf_stop() {
  docker exec "$PGF_C" sh -c 'kill "$(cat "$1/$2.pid")" 2>/dev/null; rm -f "$1/$2.pid"' sh "$PGF_DIR" "$1"
  docker exec "$PGF_C" cat "$PGF_DIR/$1.log" >"$WORK/pgfailover-$1.log"
}
# pgf_lost NAME CONTAINER: acknowledged writes of that log missing on the server of CONTAINER.
pgf_lost() {
  local ids acked found
  ids=$(awk '$1 == "ok" { printf "%s%s", sep, $2; sep = "," }' "$WORK/pgfailover-$1.log")
  acked=$(awk '$1 == "ok"' "$WORK/pgfailover-$1.log" | wc -l)
  found=$(pgf_sql "$2" "SELECT count(*) FROM $PGF_TABLE WHERE id = ANY ('{$ids}'::int[])" "$PGF_DB") ||
    die "pgfailover: cannot count the acknowledged writes in $PGF_TABLE on $2"
  echo $((acked - found))
}

# The client's set-up: psycopg2 (what apt adds is recorded), the writer, the CA, the passfile, the
# connection string, and the table the writer fills.
pgf_setup() {
  local json user pass port ca hosts="" h client
  # The password stays off command lines: the values are read from the JSON on stdin.
  json=$(render "$PG_HOST" "{'app': pg_schema_users | selectattr('profile', 'eq', 'application') | first,
    'client': (groups['monitoring'] | default([]) + [''])[0], 'members': groups['postgresql'] | join(' '),
    'port': haproxy_postgresql_rw_port | default($(role_default haproxy haproxy_postgresql_rw_port)),
    'timings': postgresql_ha_timings | default('$(role_default postgresql postgresql_ha_timings)')}")
  PGF_HOSTS=$(pgf_json members <<<"$json")
  PGF_TIMINGS=$(pgf_json timings <<<"$json")
  port=$(pgf_json port <<<"$json")
  user=$(pgf_json app name <<<"$json")
  pass=$(pgf_json app password <<<"$json")
  PGF_DB=$(pgf_json app database <<<"$json")
  PGF_TABLE=$(python3 -c 'import json, sys; print((json.load(sys.stdin)["app"].get("schemas") or ["public"])[0])' <<<"$json").drill_writes
  client=$(pgf_json client <<<"$json")
  [ -n "$client" ] || die "pgfailover: the inventory has no host in group monitoring to run the client on"
  for h in $PGF_HOSTS; do hosts+="${hosts:+,}$(pgf_ip "${HOST_C[$h]}")"; done
  PGF_CLIENT=$client
  PGF_C=${HOST_C[$client]}
  log "pgfailover: writer.py on $PGF_CLIENT as $user through the read-write endpoints $hosts (port $port)"
  docker exec "$PGF_C" install -d -m 0700 "$PGF_DIR"
  docker exec "$PGF_C" sh -c "dpkg-query -W -f '\${Package}\n' | LC_ALL=C sort" >"$WORK/pgfailover-packages.before"
  docker exec -e DEBIAN_FRONTEND=noninteractive "$PGF_C" sh -c \
    'apt-get install -y -q --no-install-recommends python3-psycopg2 || { apt-get update -q && apt-get install -y -q --no-install-recommends python3-psycopg2; }' \
    >"$WORK/pgfailover-apt.log" 2>&1 || die "pgfailover: cannot install python3-psycopg2 on $PGF_CLIENT (log: $WORK/pgfailover-apt.log)"
  PGF_ADDED=$(docker exec "$PGF_C" sh -c "dpkg-query -W -f '\${Package}\n' | LC_ALL=C sort" | LC_ALL=C comm -13 "$WORK/pgfailover-packages.before" - | xargs)
  docker exec -i "$PGF_C" sh -c "cat >'$PGF_DIR/writer.py'" <"$PGF_WRITER"
  ca=$(psql_pg 'SHOW ssl_ca_file')
  docker exec "$PG_C" cat "$ca" | docker exec -i "$PGF_C" sh -c "cat >'$PGF_DIR/ca.crt'"
  # The password on stdin only (printf is a builtin: no command line shows it); : and \ escaped.
  pass=${pass//\\/\\\\}
  printf '*:%s:%s:%s:%s\n' "$port" "$PGF_DB" "$user" "${pass//:/\\:}" |
    docker exec -i "$PGF_C" sh -c "umask 077 && cat >'$PGF_DIR/pgpass'"
  # verify-ca: the endpoints' addresses are not the names in the servers' certificates.
  printf '%s' "host=$hosts port=$port dbname=$PGF_DB user=$user passfile=$PGF_DIR/pgpass sslmode=verify-ca sslrootcert=$PGF_DIR/ca.crt connect_timeout=2 target_session_attrs=read-write options=-csearch_path=${PGF_TABLE%.*}" |
    docker exec -i "$PGF_C" sh -c "cat >'$PGF_DIR/conninfo'"
  pgf_sql "$PG_C" "DROP TABLE IF EXISTS $PGF_TABLE; CREATE TABLE $PGF_TABLE (id int PRIMARY KEY, at timestamptz DEFAULT now());
    GRANT SELECT, INSERT ON $PGF_TABLE TO $user" "$PGF_DB" >/dev/null
}

# The step's traces removed: the table (on whichever server leads), the client's directory and
# packages. Also run by cleanup.
pgf_teardown() {
  local leader
  if [ -n "${PGF_KILLED:-}" ]; then docker start "$PG_C" >/dev/null; PGF_KILLED=""; fi
  if leader=$(pgf_leader); then pgf_sql "${HOST_C[$leader]}" "DROP TABLE IF EXISTS $PGF_TABLE" "$PGF_DB" >/dev/null; fi
  docker exec "$PGF_C" sh -c 'for f in "$1"/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; rm -rf "$1"' sh "$PGF_DIR"
  if [ -n "${PGF_ADDED:-}" ]; then
    # shellcheck disable=SC2086  # the package names are words
    docker exec -e DEBIAN_FRONTEND=noninteractive "$PGF_C" apt-get purge -y -q $PGF_ADDED >>"$WORK/pgfailover-apt.log" 2>&1 ||
      log "pgfailover: could not purge $PGF_ADDED on $PGF_CLIENT (log: $WORK/pgfailover-apt.log)"
    PGF_ADDED=""
  fi
  PGF_C=""
}

step_pgfailover() {
  local killed_at started_at streamed_s new switch_at done_at out lost errors acked first kill_s pause_s promote_s
  [ -n "${PG_BIN:-}" ] || pg_paths
  [ -n "$PG_SCOPE" ] || die "pgfailover: $PG_HOST is not a Patroni member (a cluster of two or more servers is needed)"
  pg_check_primary
  pgf_setup
  # (a) the primary's container killed while the client writes.
  pgf_start kill 150
  sleep 5
  log "pgfailover: docker kill $PG_C ($PG_HOST, the primary)"
  docker kill "$PG_C" >/dev/null
  PGF_KILLED=1
  killed_at=$(now)  # after docker kill returned: a write acknowledged later went to another server
  # Up to 140 s: Patroni's ttl, an election, HAProxy's checks and the client's retries, with room.
  if pgf_wait 140 pgf_acked_since kill "$killed_at"; then sleep 5; fi
  pgf_stop kill
  new=$(pgf_wait 30 pgf_leader >/dev/null && pgf_leader) || die "pgfailover: no member leads after the kill (journalctl -u $PG_SERVICE on the others)"
  lost=$(pgf_lost kill "${HOST_C[$new]}")
  read -r acked errors first < <(awk -v t="$killed_at" '$1 == "ok" { n++; if ($3 > t && !f) f = $3 } $1 == "err" { e++ }
    END { printf "%d %d %s\n", n, e, (f ? f - t : "none") }' "$WORK/pgfailover-kill.log")
  kill_s=$([ "$first" = none ] && echo "> 140 s" || calc "%.1f s" "$first")
  log "pgfailover: $new leads; first write acknowledged $kill_s after the kill; $lost of $acked acknowledged writes missing"
  row "PostgreSQL failover, writes accepted again" "$kill_s" "<= 30 s (seed 003: 60 s)" \
    "seen by writer.py (psycopg2) on $PGF_CLIENT committing a row at a time through the read-write endpoints, from docker kill of $PG_HOST's container; new primary $new; $acked acknowledged writes, $errors failed attempts; postgresql_ha_timings $PGF_TIMINGS"
  row "PostgreSQL failover, acknowledged writes lost" "$lost" "0" "counted on the new primary $new (synchronous_mode)"
  started_at=$(now)
  docker start "$PG_C" >/dev/null
  PGF_KILLED=""
  pgf_wait 300 pgf_streaming "$PG_C" || die "pgfailover: $PG_HOST did not stream again within 300 s of docker start (journalctl -u $PG_SERVICE in $PG_C)"
  streamed_s=$(since "$started_at")
  row "PostgreSQL old primary streaming again" "$streamed_s s" "" "from docker start of $PG_HOST's container; Patroni rejoins it (pg_rewind when needed), nobody runs anything"
  # (b) back to the original primary with promote.yml, while the client writes.
  pgf_wait 120 pgf_sync "${HOST_C[$new]}" "$PG_HOST" || die "pgfailover: $PG_HOST did not become $new's synchronous standby within 120 s"
  # The writer numbers its rows from 1: the kill run's rows go first (else its first ~200 attempts
  # fail on duplicate keys and count as a pause).
  pgf_sql "${HOST_C[$new]}" "TRUNCATE $PGF_TABLE" "$PGF_DB" >/dev/null
  pgf_start switch 150
  sleep 3
  log "pgfailover: playbooks/promote.yml -e promote_target=$PG_HOST (log: $WORK/pgfailover-promote.log)"
  vault_env
  switch_at=$(now)
  ansible-playbook -i "$INV/hosts.yml" playbooks/promote.yml -e "promote_target=$PG_HOST" >"$WORK/pgfailover-promote.log" 2>&1 ||
    { tail -n 30 "$WORK/pgfailover-promote.log" >&2; die "pgfailover: promote.yml failed (log: $WORK/pgfailover-promote.log)"; }
  done_at=$(now)
  promote_s=$(since "$switch_at")
  pgf_wait 60 pgf_acked_since switch "$done_at" || true
  sleep 3
  pgf_stop switch
  [ "$(pgf_leader)" = "$PG_HOST" ] || die "pgfailover: $PG_HOST does not lead after promote.yml"
  lost=$(pgf_lost switch "$PG_C")
  read -r acked pause_s < <(awk -v a="$switch_at" '$1 == "ok" { n++; if (p && $3 >= a && $3 - p > g) g = $3 - p; p = $3 }
    END { printf "%d %.1f\n", n, g }' "$WORK/pgfailover-switch.log")
  out=$(pgf_acked_since switch "$done_at" && echo "" || echo "; no write acknowledged after the playbook ended")
  log "pgfailover: switchover back to $PG_HOST: longest write pause $pause_s s"
  row "PostgreSQL switchover, longest write pause" "$pause_s s" "<= 10 s" \
    "playbooks/promote.yml -e promote_target=$PG_HOST (back to the original primary) in $promote_s s, seen by the same client; $acked acknowledged writes, $lost missing on $PG_HOST$out"
  # The former leader streams from the original primary again before the next step.
  pgf_wait 120 pgf_sync "$PG_C" "$new" || log "pgfailover: warning: $new is not $PG_HOST's synchronous standby after 120 s"
  pgf_teardown
}

# --- redis-benchmark: a TLS cluster primary with the ACL user vs a default redis-server ---------
REDIS_SPARE_PORT=6399
REDIS_VALUE=$(head -c 256 /dev/zero | tr '\0' v)

rx() { docker exec "$REDIS_C" "$@"; }

redis_stop_default() {
  rx sh -c "redis-cli -p $REDIS_SPARE_PORT shutdown nosave >/dev/null 2>&1; rm -rf $SCRATCH" || true
}

# redis_rps SET|GET CONNECTION-OPTIONS...: one redis-benchmark run of that command on keys
# ai:{tag}:<random> (the application user's key pattern; the tag pins them to one primary's slots).
redis_rps() {
  local cmd=$1 key="ai:{$REDIS_TAG}:__rand_int__"
  shift
  if [ "$cmd" = SET ]; then set -- "$@" SET "$key" "$REDIS_VALUE"; else set -- "$@" GET "$key"; fi
  rx redis-benchmark -c "$REDIS_CLIENTS" -n "$REDIS_REQUESTS" -r 100000 --csv "$@" 2>&1 |
    awk -F'","' 'NR > 1 && $2 ~ /^[0-9.]+$/ { print $2; found = 1 } END { if (!found) exit 1 }'
}

# The first hash tag b<N> whose slot (CRC16/XMODEM mod 16384) is in the given slot ranges.
redis_tag_for() {
  python3 - "$@" <<'EOF'
import sys
ranges = [tuple(int(x) for x in (r.split("-") * 2)[:2]) for r in sys.argv[1:] if not r.startswith("[")]
def slot(key: bytes) -> int:
    crc = 0
    for b in key:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc % 16384
print(next(f"b{i}" for i in range(100000) if any(lo <= slot(f"b{i}".encode()) <= hi for lo, hi in ranges)))
EOF
}

# The Redis settings both Redis steps use, as the inventory gives them (JSON): the application user
# and its password, the administrator and theirs, the first instance's port, the TLS directory.
redis_settings() {
  render "$REDIS_HOST" "{'user': redis_users[0].name, 'password': redis_users[0].password,
    'admin': redis_admin_user | default('$(role_default redis redis_admin_user)'), 'admin_password': redis_admin_password,
    'port': redis_base_port | default($(role_default redis redis_base_port)),
    'tls_dir': redis_tls_dir | default('$(role_default redis redis_tls_dir)')}"
}

step_redis() {
  local json user pass base tls_dir ip node port r v cmd out
  local -a tls ours plain
  declare -A RPS=()
  json=$(redis_settings)
  user=$(json_get "$json" user)
  pass=$(json_get "$json" password)
  base=$(json_get "$json" port)
  tls_dir=$(json_get "$json" tls_dir)
  tls=(--tls --cacert "$tls_dir/ca.crt" -h 127.0.0.1)
  # A primary on this host, and its slots, from CLUSTER NODES (as the administrator).
  ip=$(docker inspect -f '{{ (index .NetworkSettings.Networks "onprem-bench").IPAddress }}' "$REDIS_C")
  node=$(rx redis-cli "${tls[@]}" -p "$base" --user "$(json_get "$json" admin)" -a "$(json_get "$json" admin_password)" \
           --no-auth-warning cluster nodes | awk -v ip="$ip" '$3 ~ /master/ && index($2, ip ":") == 1 { print; exit }')
  [ -n "$node" ] || die "no cluster primary found on $REDIS_HOST ($ip)"
  port=$(echo "$node" | awk '{ split($2, a, "[:@]"); print a[2] }')
  # shellcheck disable=SC2046  # the slot ranges are words
  REDIS_TAG=$(redis_tag_for $(echo "$node" | cut -d' ' -f9-))
  ours=("${tls[@]}" -p "$port" --user "$user" -a "$pass")
  plain=(-h 127.0.0.1 -p "$REDIS_SPARE_PORT")
  log "redis: primary $REDIS_HOST:$port (TLS, ACL user $user, keys ai:{$REDIS_TAG}:*) vs redis-server on port $REDIS_SPARE_PORT"
  rx install -d -o redis -g redis "$SCRATCH/redis"
  docker exec -u redis "$REDIS_C" redis-server --port "$REDIS_SPARE_PORT" --bind 127.0.0.1 --daemonize yes \
    --dir "$SCRATCH/redis" --logfile "$SCRATCH/redis/redis.log" --pidfile "$SCRATCH/redis/redis.pid" >/dev/null
  for _ in $(seq 1 50); do rx redis-cli "${plain[@]}" ping >/dev/null 2>&1 && break; sleep 0.2; done
  for r in $(seq 1 "$REDIS_RUNS"); do
    for cmd in SET GET; do
      for v in ours plain; do
        if [ "$v" = ours ]; then out=$(redis_rps "$cmd" "${ours[@]}") || die "redis-benchmark $cmd failed on the cluster primary"
        else out=$(redis_rps "$cmd" "${plain[@]}") || die "redis-benchmark $cmd failed on the default redis-server"; fi
        RPS[$v$cmd]="${RPS[$v$cmd]:-} $out"
        log "redis run $r/$REDIS_RUNS $cmd $v: $out ops/s"
      done
    done
  done
  redis_stop_default
  # Remove the bench's keys from the cluster.
  rx sh -c 'redis-cli "$@" --no-auth-warning --scan --pattern "ai:{'"$REDIS_TAG"'}:*" | xargs -r -n 500 redis-cli "$@" --no-auth-warning unlink >/dev/null' \
    sh "${ours[@]}"
  for cmd in SET GET; do
    local a b
    a=$(echo "${RPS[ours$cmd]}" | median)
    b=$(echo "${RPS[plain$cmd]}" | median)
    row "redis $cmd ops/s, cluster primary (TLS, ACL)" "$(calc %.0f "$a")" "" \
      "median of $REDIS_RUNS; $REDIS_CLIENTS clients, $REDIS_REQUESTS requests, ${#REDIS_VALUE}-byte values"
    row "redis $cmd ops/s, default redis-server" "$(calc %.0f "$b")" "" "same host, no TLS, no ACL, Debian's defaults"
    row "redis $cmd ratio cluster / default" "$(calc %.2f "$a / $b")" "" "the cost of TLS, ACL, replication and AKE notifications"
  done
}

# --- Redis failover and switchover as a client sees them ---------------------------------------
# The drill of scenario redis_cluster (test_redis_failover.py), on the bench's hosts and the role's
# default cluster-node-timeout: the client of that scenario (redis-py's RedisCluster, on this
# machine, at the addresses the cluster announces) writes one key after the other to every shard
# while every redis-server of a host that serves 2 of the 6 primaries gets SIGSTOP (a hung VM: its
# TCP connections stay open). The figure is the longest time a shard took no write from the
# client; the fail-back of those primaries (CLUSTER FAILOVER, a planned switchover) is measured as
# the longest the client waited for one write. Every write a replica confirmed (WAIT 1) must be
# read back afterwards.
REDIS_PY_SPEC=redis==8.2.0
REDIS_FAILOVER_CLIENT=molecule/redis_cluster/tests/clients/failover_client.py
REDIS_FAILOVER_STATUS=$WORK/redis-failover.status.json

# The redis-py the client runs with, in the directory scenario redis_cluster installs it to.
redis_py_dir() {
  local dir=${ONPREM_CACHE_DIR:-/var/cache/onprem-datastores}/redis-clients/redis-py-${REDIS_PY_SPEC#redis==}
  if [ ! -e "$dir/.installed" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    python3 -m pip install --quiet --disable-pip-version-check --target "$dir" "$REDIS_PY_SPEC" >&2 ||
      die "cannot install $REDIS_PY_SPEC into $dir"
    touch "$dir/.installed"
  fi
  echo "$dir"
}

# rf_cli CONTAINER ARGS...: redis-cli as the administrator on that host (-p PORT among ARGS); the
# password travels in REDISCLI_AUTH, never on a command line.
rf_cli() {
  local c=$1
  shift
  REDISCLI_AUTH=$RF_ADMIN_PASSWORD docker exec -e REDISCLI_AUTH "$c" \
    redis-cli --tls --cacert "$RF_TLS_DIR/ca.crt" --user "$RF_ADMIN" --no-auth-warning -h 127.0.0.1 "$@"
}

# rf_written_since TIME: the client had a write accepted on every shard after TIME (Unix time).
rf_written_since() {
  python3 - "$REDIS_FAILOVER_STATUS" "$1" "$RF_SHARDS" <<'EOF'
import json, sys
try:
    last = json.load(open(sys.argv[1]))["last_ok"]
except (OSError, ValueError):
    sys.exit(1)
sys.exit(0 if len(last) == int(sys.argv[3]) and min(last.values()) > float(sys.argv[2]) else 1)
EOF
}

# rf_roles ROLE: every former primary of the stopped host has that role (a replica with its link up).
rf_roles() {
  local port out
  for port in $RF_PORTS; do
    out=$(rf_cli "$RF_STOPPED" -p "$port" INFO replication | tr -d '\r') || return 1
    grep -qx "role:$1" <<<"$out" || return 1
    [ "$1" = master ] || grep -qx 'master_link_status:up' <<<"$out" || return 1
  done
}

# rf_wait SECONDS INTERVAL COMMAND...: run COMMAND until it succeeds; false at the deadline.
rf_wait() {
  local deadline=$(($(date +%s) + $1)) interval=$2
  shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep "$interval"
  done
}

rf_resume() {
  if [ -n "${RF_PIDS:-}" ]; then
    # shellcheck disable=SC2086  # the PIDs are words
    docker exec "$RF_STOPPED" sh -c 'kill -CONT "$@"' sh $RF_PIDS || true
    RF_PIDS=""
  fi
}

step_redisfailover() {
  local json h c ip nodes entry="" stopped_ip tags="" line tag py socket_timeout=1 timeout_ms port args
  local paused_at continued_at switch_at written_at failed_over=true
  declare -A C_OF_IP=()
  json=$(redis_settings)
  RF_ADMIN=$(json_get "$json" admin)
  RF_ADMIN_PASSWORD=$(json_get "$json" admin_password)
  RF_TLS_DIR=$(json_get "$json" tls_dir)
  port=$(json_get "$json" port)
  for h in $ALL_HOSTS; do
    c=${HOST_C[$h]}
    ip=$(docker inspect -f '{{ (index .NetworkSettings.Networks "onprem-bench").IPAddress }}' "$c")
    C_OF_IP[$ip]=$c
  done
  nodes=$(rf_cli "$REDIS_C" -p "$port" CLUSTER NODES | tr -d '\r')
  timeout_ms=$(rf_cli "$REDIS_C" -p "$port" CONFIG GET cluster-node-timeout | tr -d '\r' | sed -n 2p)
  # The host with the most primaries (2 of 6 on the sandbox's three hosts), other than the one
  # the administrator's commands go to when there is a choice.
  stopped_ip=$(awk '$3 ~ /master/ { split($2, a, ":"); n[a[1]]++ } END { for (i in n) print n[i], i }' <<<"$nodes" |
    sort -k1,1nr -k2 | awk -v avoid="$(docker inspect -f '{{ (index .NetworkSettings.Networks "onprem-bench").IPAddress }}' "$REDIS_C")" \
      'NR == 1 { best = $2; top = $1 } $1 == top && $2 != avoid && !other { other = $2 } END { print (other ? other : best) }')
  RF_STOPPED=${C_OF_IP[$stopped_ip]:?no container has the address $stopped_ip of CLUSTER NODES}
  RF_PORTS=$(awk -v ip="$stopped_ip" '$3 ~ /master/ && index($2, ip ":") == 1 { split($2, a, "[:@]"); print a[2] }' <<<"$nodes" | sort -n | xargs)
  for ip in $(awk '{ split($2, a, ":"); print a[1] }' <<<"$nodes" | sort -u); do
    [ "$ip" = "$stopped_ip" ] || { entry=$ip; break; }
  done
  [ -n "$entry" ] || die "redisfailover: the cluster has no host besides $RF_STOPPED"
  while read -r line; do
    # shellcheck disable=SC2046  # the slot ranges are words
    tag=$(redis_tag_for $(echo "$line" | cut -d' ' -f9-))
    tags+="${tags:+ }$tag"
  done < <(awk '$3 ~ /master/' <<<"$nodes")
  RF_SHARDS=$(wc -w <<<"$tags")
  docker exec "${C_OF_IP[$entry]}" cat "$RF_TLS_DIR/ca.crt" >"$WORK/redis-ca.crt"
  py=$(redis_py_dir)
  args=$(python3 -c 'import json, sys; a = sys.argv[1:]; print(json.dumps({"host": a[0], "port": int(a[1]), "ca": a[2],
    "user": a[3], "name": "bench-failover", "tags": a[4].split(), "status": a[5], "socket_timeout": float(a[6]), "wait_ms": 50}))' \
    "$entry" "$port" "$PWD/$WORK/redis-ca.crt" "$(json_get "$json" user)" "$tags" "$PWD/$REDIS_FAILOVER_STATUS" "$socket_timeout")
  rm -f "$REDIS_FAILOVER_STATUS"
  log "redisfailover: redis-py writes to $RF_SHARDS shards through $entry:$port; stopping every redis-server of $RF_STOPPED (primaries on ports $RF_PORTS), cluster-node-timeout $timeout_ms ms"
  REDIS_PASSWORD=$(json_get "$json" password) PYTHONPATH=$py python3 -s "$REDIS_FAILOVER_CLIENT" "$args" \
    >"$WORK/redis-failover.json" 2>"$WORK/redis-failover.log" &
  RF_CLIENT=$!
  rf_wait 30 0.2 rf_written_since 0 || die "redisfailover: the client did not write to every shard (log: $WORK/redis-failover.log)"
  RF_PIDS=$(docker exec "$RF_STOPPED" sh -c 'for u in $(systemctl list-units --state=running --plain --no-legend "redis-server@*" | cut -d" " -f1); do
    systemctl show -p MainPID --value "$u"; done' | xargs)
  [ -n "$RF_PIDS" ] || die "redisfailover: no running redis-server@ unit in $RF_STOPPED"
  # shellcheck disable=SC2086  # the PIDs are words
  docker exec "$RF_STOPPED" sh -c 'kill -STOP "$@"' sh $RF_PIDS
  paused_at=$(now)  # after kill returned: a write accepted later cannot come from the stopped primaries
  # Up to 120 s: the node timeout, detection, election, and the client's own retries, with room.
  rf_wait 120 0.2 rf_written_since "$paused_at" || failed_over=false
  sleep 1  # a second of writes to the new primaries while the old ones are still stopped
  rf_resume
  continued_at=$(now)
  [ "$failed_over" = true ] || log "redisfailover: the client could not write every shard within 120 s of the stop"
  rf_wait 60 1 rf_roles slave || die "redisfailover: the stopped primaries did not come back as replicas (CLUSTER NODES on $RF_STOPPED)"
  log "redisfailover: failing the primaries back to $RF_STOPPED (CLUSTER FAILOVER)"
  switch_at=$(now)
  for port in $RF_PORTS; do
    [ "$(rf_cli "$RF_STOPPED" -p "$port" CLUSTER FAILOVER | tr -d '\r')" = OK ] || die "redisfailover: CLUSTER FAILOVER refused on $RF_STOPPED:$port"
  done
  rf_wait 30 0.5 rf_roles master || die "redisfailover: the fail-back to $RF_STOPPED did not complete"
  rf_wait 30 0.2 rf_written_since "$(now)" || die "redisfailover: the client did not write every shard after the fail-back"
  written_at=$(now)
  kill -TERM "$RF_CLIENT"
  wait "$RF_CLIENT" || die "redisfailover: the client failed (log: $WORK/redis-failover.log)"
  RF_CLIENT=""
  # The rows, from the client's report: the longest time a shard took no write while the host was
  # stopped, and the longest the client waited for one write during the fail-back.
  python3 - "$WORK/redis-failover.json" "$paused_at" "$continued_at" "$switch_at" "$written_at" "$timeout_ms" \
    "$socket_timeout" "$failed_over" "$RF_STOPPED" "$RF_PORTS" >>"$ROWS" <<'EOF'
import json, sys
seen = json.loads(open(sys.argv[1]).read().splitlines()[-1])
paused, continued, switch, written = map(float, sys.argv[2:6])
timeout_ms, socket_timeout, failed_over, stopped, ports = sys.argv[6:11]
def longest(gaps, start, end):
    return max([b - a for a, b in gaps if b > start and a < end], default=0.0)
outage = longest([g[1:] for g in seen["shard_gaps"]], paused, continued)
held_up = longest(seen["stalls"], paused, continued)
switchover = longest(seen["stalls"], switch, written)
value = "%.1f s" % outage if failed_over == "true" else "> 120 s"
print("redis failover, write outage seen by a client|%s|<= 15 s (Azure 10-15 s)|longest time a shard took no write "
      "from redis-py %s (socket timeout %s s, writing every shard in turn) while %s (primaries on ports %s) was "
      "stopped; longest wait for one write %.1f s; cluster-node-timeout %s ms; %d writes accepted, %d confirmed by "
      "WAIT 1, %d confirmed lost (target 0), %d unconfirmed lost"
      % (value, seen["version"], socket_timeout, stopped, ports.replace(" ", ", "), held_up, timeout_ms,
         seen["accepted"], seen["confirmed"], seen["lost_confirmed_count"], seen["lost_accepted_count"]))
print("redis switchover, write pause seen by a client|%.1f s||longest wait for one write while CLUSTER FAILOVER moved "
      "those primaries back to %s, one after the other; client errors over both: %s"
      % (switchover, stopped, seen["errors"] or "none"))
EOF
  log "redisfailover: client report in $WORK/redis-failover.json"
}

# --- Backup and restore throughput --------------------------------------------------------------
# Each figure divides the same size (the data directory as pgBackRest counts it) by the time.
# With pgbackrest_repo_host (the sandbox: mon1) the backup runs on the repository host and pulls
# the data over pgBackRest's TLS server, and the restore pulls it back: as the timers and
# playbooks/restore.yml do. Without one, both run on the primary.
step_backup() {
  local data start info label size_mb repo_mb copy_s backup_s restore_s rc repo_host where
  local -a repo
  [ -n "${PG_BIN:-}" ] || pg_paths
  repo_host=$(render "$PG_HOST" "pgbackrest_repo_host | default('')" | tr -d '"')
  if [ -n "$repo_host" ]; then
    repo=(docker exec -u pgbackrest "${HOST_C[$repo_host]:?$repo_host is not a host of the inventory}")
    where="on the repository host $repo_host, over TLS"
  else
    repo=(pg)
    where="on the primary"
  fi
  data=$(psql_pg 'SHOW data_directory')
  docker exec "$PG_C" install -d -m 0700 -o postgres -g postgres "$SCRATCH"
  log "backup: raw copy of $data (tar to the same disk, then sync)"
  docker exec "$PG_C" rm -rf "$SCRATCH/copy"
  start=$(now)
  rc=0
  docker exec "$PG_C" sh -c "mkdir -p '$SCRATCH/copy' && tar -C '$data' --exclude=./pg_wal -cf - . | tar -C '$SCRATCH/copy' -xf - && sync -f '$SCRATCH/copy'" || rc=$?
  copy_s=$(since "$start")
  [ "$rc" = 0 ] || die "raw copy failed"
  log "backup: pgBackRest full backup (pgbackrest-backup full, as the timer runs it) $where"
  start=$(now)
  "${repo[@]}" /usr/local/sbin/pgbackrest-backup full >"$WORK/pgbackrest-backup.log" 2>&1 || { tail -20 "$WORK/pgbackrest-backup.log" >&2; die "backup failed"; }
  backup_s=$(since "$start")
  info=$("${repo[@]}" pgbackrest --stanza=main --output=json info)
  label=$(echo "$info" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["backup"][-1]["label"])')
  size_mb=$(echo "$info" | python3 -c 'import json, sys; print(round(json.load(sys.stdin)[0]["backup"][-1]["info"]["size"] / 1048576))')
  repo_mb=$(echo "$info" | python3 -c 'import json, sys; print(round(json.load(sys.stdin)[0]["backup"][-1]["info"]["repository"]["delta"] / 1048576))')
  log "backup: restore of $label into $SCRATCH/restore"
  docker exec "$PG_C" rm -rf "$SCRATCH/restore"
  docker exec "$PG_C" install -d -m 0700 -o postgres -g postgres "$SCRATCH/restore"
  start=$(now)
  pg sh -c "pgbackrest --stanza=main --pg1-path='$SCRATCH/restore' --set='$label' --type=immediate --target-action=promote \
    --archive-mode=off --log-level-console=warn restore && sync -f '$SCRATCH/restore'" >"$WORK/pgbackrest-restore.log" 2>&1 ||
    { tail -20 "$WORK/pgbackrest-restore.log" >&2; die "restore failed"; }
  restore_s=$(since "$start")
  docker exec "$PG_C" rm -rf "$SCRATCH/copy" "$SCRATCH/restore"
  local copy_rate backup_rate restore_rate
  copy_rate=$(calc %.1f "$size_mb / $copy_s")
  backup_rate=$(calc %.1f "$size_mb / $backup_s")
  restore_rate=$(calc %.1f "$size_mb / $restore_s")
  row "raw copy of the data directory" "$copy_rate MB/s" "" "${size_mb} MB in ${copy_s} s (tar to tar, pg_wal excluded, then sync)"
  row "pgBackRest full backup" "$backup_rate MB/s" "" "${size_mb} MB in ${backup_s} s $where; ${repo_mb} MB in the repository (zst, aes-256-cbc)"
  row "pgBackRest restore" "$restore_rate MB/s" "" "${restore_s} s into a scratch directory, live cluster untouched"
  row "backup ratio pgBackRest / raw copy" "$(calc %.2f "$backup_rate / $copy_rate")" "" ""
  row "restore ratio pgBackRest / raw copy" "$(calc %.2f "$restore_rate / $copy_rate")" "" ""
}

# --- Clean up, always ---------------------------------------------------------------------------
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  set +e
  # A failover drill cut short: the killed primary started again, the client's writer, files and
  # packages and the drill's table removed.
  if [ -n "${PGF_C:-}" ]; then pgf_teardown; fi
  if [ -n "${PG_C:-}" ] && [ -n "${PG_SAVED:-}" ] && docker container inspect "$PG_C" >/dev/null 2>&1; then
    pg_restore_ours
    psql_pg 'DROP DATABASE IF EXISTS bench WITH (FORCE)' >/dev/null 2>&1
    docker exec "$PG_C" rm -rf "$SCRATCH"
  fi
  if [ -n "${REDIS_C:-}" ] && docker container inspect "$REDIS_C" >/dev/null 2>&1; then
    redis_stop_default
  fi
  # A failover drill cut short: its processes run again, its client stops. The primaries it
  # moved are failed back by the next site.yml run (redis_cluster_restore_primaries).
  rf_resume
  if [ -n "${RF_CLIENT:-}" ]; then kill -TERM "$RF_CLIENT" 2>/dev/null; wait "$RF_CLIENT" 2>/dev/null; fi
  if [ "$KEEP" = 1 ]; then
    log "containers kept (BENCH_KEEP=1): ${PREFIX}*; remove them with: ONPREM_SANDBOX_LABEL=org.onprem.bench=1 ONPREM_SANDBOX_NET=onprem-bench scripts/sandbox.sh down"
  else
    log "removing the bench containers"
    scripts/sandbox.sh down >/dev/null
  fi
  exit "$rc"
}

# --- The table -----------------------------------------------------------------------------------
report() {
  local load=$1 cores=$2 mem=$3 others=$4 dirty=""
  git diff --quiet HEAD -- 2>/dev/null || dirty=" (with uncommitted changes)"
  {
    echo "onprem.datastores benchmark, $(date '+%Y-%m-%d %H:%M %Z'), commit $(git rev-parse --short HEAD)$dirty"
    echo "machine: $cores cores, $mem RAM, load average at start $load, $others other containers running at start"
    echo "hosts: $ALL_HOSTS (containers ${PREFIX}*, budgets from $SOURCE_INV/group_vars)"
    if [ "$PG_MEM_MB" != 0 ]; then
      echo "memory: $PG_HOST's container limited to $PG_MEM_MB MB ($PG_MEM_NOTE); ${PG_MEM_CHECK:-not checked: no pgbench step}; the others see the whole machine"
    else
      echo "memory: no container limited ($PG_MEM_NOTE); ${PG_MEM_CHECK:-not checked: no pgbench step}; every container sees the whole machine"
    fi
    if step pgbench; then
      echo "PostgreSQL memory plan for our tuning and for PGTune alike: ${PG_PLAN:-?}"
      echo "pgbench: TPC-B-like, scale $PG_SCALE, $PG_CLIENTS clients, 2 threads, ${PG_SECONDS} s runs after a ${PG_WARMUP} s warm-up," \
        "$PG_RUNS runs per configuration interleaved, before each a restart${PG_SCOPE:+ (Patroni paused, restarts through its REST API)}, the warm-up, the archiver and standby caught up, a CHECKPOINT;" \
        "each configuration in postgresql.auto.conf, read last; WAL archiving on in all"
    fi
    echo
    awk -F'|' 'BEGIN { h[1] = "metric"; h[2] = "value"; h[3] = "target"; h[4] = "note" }
      { n++; for (i = 1; i <= 4; i++) { c[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
      END {
        for (i = 1; i <= 3; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
        fmt = "%-" w[1] "s | %-" w[2] "s | %-" w[3] "s | %s\n"
        printf fmt, h[1], h[2], h[3], h[4]
        printf "%s-|-%s-|-%s-|-%s\n", sep(w[1]), sep(w[2]), sep(w[3]), sep(4)
        for (r = 1; r <= n; r++) printf fmt, c[r, 1], c[r, 2], c[r, 3], c[r, 4]
      }
      function sep(k,   s) { s = ""; while (k-- > 0) s = s "-"; return s }' "$ROWS"
    echo
    echo "whole bench: $(since "$BENCH_START") s; logs in $WORK/"
  } | tee "$REPORT"
  rm -f "$ROWS"
  log "table written to $REPORT"
}

main() {
  local v
  for v in $PG_VARIANTS; do  # fail now, not after a 15-minute converge
    case $v in
      ours+*=* | default+*=* | pgtune+*=*) ;;
      *) die "BENCH_PGBENCH_VARIANTS: '$v' is not BASE+name=value[+name=value...] with BASE ours, default or pgtune" ;;
    esac
  done
  [[ "$PG_MEMORY" =~ ^(|none|[1-9][0-9]*)$ ]] || die "BENCH_PG_MEMORY: '$PG_MEMORY' is not a number of MB or none"
  [[ "$PG_SCALE" =~ ^(|[1-9][0-9]*)$ ]] || die "BENCH_PGBENCH_SCALE: '$PG_SCALE' is not a whole number"
  mkdir -p "$WORK"
  : >"$ROWS"
  BENCH_START=$(now)
  local load cores mem others
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  cores=$(nproc)
  mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  others=$(docker ps --format '{{.Names}}' | grep -vc "^$PREFIX" || true)
  if step converge && [ "$FRESH" = 1 ]; then
    log "removing earlier bench containers and the bench inventory's secrets and CA"
    scripts/sandbox.sh down >/dev/null
    rm -rf "$INV"
  fi
  make_inventory
  read_inventory
  pg_memory
  trap cleanup EXIT
  set -E
  trap 'log "ERROR: line $LINENO: \"$BASH_COMMAND\" failed"' ERR
  if step converge; then step_converge; fi
  if step pgbench; then step_pgbench; fi
  if step pgfailover; then step_pgfailover; fi
  if step redis; then step_redis; fi
  if step redisfailover; then step_redisfailover; fi
  if step backup; then step_backup; fi
  if [ -n "${PG_SAVED:-}" ]; then pg_restore_ours; fi
  # FORCE: ends other sessions still in it (e.g. the PostgreSQL exporter's).
  psql_pg 'DROP DATABASE IF EXISTS bench WITH (FORCE)' >/dev/null
  if step recheck; then
    log "final re-run of site.yml: the hosts must be as the bench found them"
    converge converge-after
    row "site.yml re-run after the bench" "${CONVERGE_SECONDS} s" "changed=0" "changed=$CONVERGE_CHANGED; $CONVERGE_RUNS"
  fi
  report "$load" "$cores" "$mem" "$others"
}

# One line: bash has read the whole file before it runs main, so editing it during a run is safe.
main "$@"; exit
