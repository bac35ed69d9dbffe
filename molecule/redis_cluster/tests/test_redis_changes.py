"""redis_cluster: what a re-run of playbooks/redis.yml does to a running cluster.

Runs first (pytest takes files alphabetically): every test here puts maxmemory-policy back, which
test_redis_cluster.py checks; tcp-backlog (checked nowhere else) stays at its changed value.

A runtime setting changes with CONFIG SET: same processes, new value in memory and on disk.
A restart-only setting goes through the rolling play: one instance at a time, a primary only
after its replica took over, the cluster ok and every key readable throughout.
An instance that cannot come back fails the run with its own reason, keeps its marker, and the
next run restarts it.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime

import pytest
import testinfra

from conftest import recap_changed
from test_redis_cluster import CA, PORTS, _q, info

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ["redis-1", "redis-2", "redis-3"]
# redis_maxmemory_policy (default allkeys-lru): applied with CONFIG SET.
CHANGED_POLICY = "allkeys-lfu"
# redis_tcp_backlog (default 511): in redis-<port>.conf, needs a restart.
CHANGED_BACKLOG = 1023
# Redis log line: "<pid>:<role> 27 Jan 2021 11:51:38.304 * message"; role M primary, S replica.
CLI_ADMIN = "redis-cli --tls --cacert {} --user admin --no-auth-warning".format(CA)
LOG_LINE = re.compile(r"^\d+:([MSCX]) (\d+ \w+ \d{4} [\d:.]+) [.*#-] (.*)$")


@pytest.fixture(scope="module")
def hosts():
    return {name: testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}") for name in HOSTS}


@pytest.fixture(scope="module")
def admin(hosts):
    password = hosts["redis-1"].ansible.get_variables()["redis_admin_password"]
    return "env REDISCLI_AUTH={} {}".format(_q(password), CLI_ADMIN)


@pytest.fixture(scope="module")
def addresses(hosts):
    return {name: host.check_output("hostname -I").split()[0] for name, host in hosts.items()}


def state(hosts, admin) -> dict:
    """(host, port) -> INFO server/replication, the two settings as Redis and as the files say,
    the log's length and whether a restart marker waits. One shell per host."""
    script = " ".join([
        "for p in {};".format(" ".join(map(str, PORTS))),
        "do echo \"== $p\";",
        "printf '%s\\n' 'INFO server' 'INFO replication' 'CONFIG GET maxmemory-policy' 'CONFIG GET tcp-backlog'",
        "| {} -h 127.0.0.1 -p $p | tr -d '\\r';".format(admin),
        "grep -hE '^(maxmemory-policy|tcp-backlog) ' /etc/redis/redis-$p.runtime.conf /etc/redis/redis-$p.conf",
        "| sed 's/^/file-/; s/ /:/';",
        "echo \"log_lines:$(wc -l < /var/log/redis/redis-server-$p.log)\";",
        "echo \"pending:$(ls /etc/redis/restart-pending/ | grep -cx $p)\";",
        "done",
    ])
    result = {}
    for name, host in hosts.items():
        out = host.run(script)
        assert out.rc == 0, out.stderr
        for block in out.stdout.split("== ")[1:]:
            port, _newline, body = block.partition("\n")
            lines = body.splitlines()
            values = info(body)
            for setting in ("maxmemory-policy", "tcp-backlog"):
                values["config-" + setting] = lines[lines.index(setting) + 1]
            result[(name, int(port))] = values
    assert len(result) == len(HOSTS) * len(PORTS)
    return result


def restarted(before: dict, after: dict) -> list:
    return sorted(node for node in after if after[node]["run_id"] != before[node]["run_id"])


def new_log_lines(hosts, before: dict) -> dict:
    """(host, port) -> the Redis log lines written since `before` was read."""
    lines = {}
    for (name, port), values in before.items():
        text = hosts[name].check_output("tail -n +%s /var/log/redis/redis-server-%s.log",
                                        str(int(values["log_lines"]) + 1), str(port))
        lines[(name, port)] = text.splitlines()
    return lines


def replies(output: str) -> list:
    """redis-cli -c's replies, without the "-> Redirected to slot ..." lines it prints when it
    follows a MOVED."""
    return [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("-> Redirected")]


def converge(ansible_playbook, extra_vars: dict | None = None):
    """A re-run limited to the configuration, as an operator changing a setting runs it: the
    plans (tagged always), the configure step and the restart play (both tagged redis_configure).
    The scenario's idempotence step has already run the whole playbook."""
    run = ansible_playbook("converge.yml", extra_vars, tags="redis_configure")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run


def test_runtime_setting_changes_in_place_and_on_disk(ansible_playbook, hosts, admin):
    before = state(hosts, admin)
    assert {v["config-maxmemory-policy"] for v in before.values()} == {"allkeys-lru"}

    run = converge(ansible_playbook, {"redis_maxmemory_policy": CHANGED_POLICY})
    assert recap_changed(run.stdout) > 0
    after = state(hosts, admin)
    for node, values in after.items():
        assert values["config-maxmemory-policy"] == CHANGED_POLICY, node
        assert values["file-maxmemory-policy"] == CHANGED_POLICY, node  # a later restart keeps it
        assert values["pending"] == "0", node
        assert (values["process_id"], values["run_id"]) == (before[node]["process_id"], before[node]["run_id"]), node

    # The same value again: nothing to do, nothing restarted.
    run = converge(ansible_playbook, {"redis_maxmemory_policy": CHANGED_POLICY})
    assert recap_changed(run.stdout) == 0, run.stdout[-4000:]
    assert restarted(before, state(hosts, admin)) == []


def test_value_redis_refuses_changes_no_file_and_no_instance(ansible_playbook, hosts, admin):
    """A runtime value Redis refuses (hz takes a number) fails the run with Redis's reason, and
    leaves every instance's files and running settings as they were: it is asked before a file is
    written."""
    files = "cat /etc/redis/redis-*.runtime.conf /etc/redis/redis-*.conf | sha256sum"
    before_files = {name: host.check_output(files) for name, host in hosts.items()}
    before = state(hosts, admin)
    get_hz = "printf 'CONFIG GET hz\\n' | {} -h 127.0.0.1 -p {} | tail -n 1".format(admin, PORTS[0])
    hz = {name: host.check_output(get_hz) for name, host in hosts.items()}

    run = ansible_playbook("converge.yml", {"redis_config_runtime_extra": {"hz": "often"}}, tags="redis_configure")

    assert run.returncode != 0
    out = re.sub(r"\s+", " ", run.stdout + run.stderr)
    assert "Redis refused the runtime settings on port(s)" in out, out[-3000:]
    assert "keeps running with its previous ones; no file was written" in out
    assert "argument 'hz'" in out, out[-3000:]  # Redis's own reason names the directive
    assert {name: host.check_output(files) for name, host in hosts.items()} == before_files
    after = state(hosts, admin)
    assert restarted(before, after) == []
    for node, values in after.items():
        assert values["config-maxmemory-policy"] == before[node]["config-maxmemory-policy"], node
    assert {name: host.check_output(get_hz) for name, host in hosts.items()} == hz
    assert set(hz.values()) == {"10"}  # Redis's default, which the role does not set


PROBE = r"""
# Every 0.2 s until /tmp/cluster-probe.stop exists: CLUSTER INFO from the first node that answers
# (a different one first each round), then a write through the cluster to one of 16 slots.
# A client whose entry node goes away tries its next seed: so does the probe when the refusal
# names the entry node itself (it may be stopped between the two commands, one instance being
# restarted at a time). So does it when the entry node itself answers CLUSTERDOWN without a
# redirect: a replica that has just started says so until it has heard from the others, and a
# client, which sends a write to the slot's primary from its slot map, never asks it (logged in
# entry_refused=[node:CLUSTERDOWN]). A refusal from the node a MOVED sent us to is the slot's
# primary refusing: that counts. CLUSTERDOWN is retried as cluster clients do around a failover
# (redis-py waits 0.25 s and retries up to 3 times; the probe, 2): each refusal is logged in
# retried=[entry>node:reply].
i=0
while [ ! -e /tmp/cluster-probe.stop ]; do
  n=$#; start=$((i % n)); answered=none; cluster=none; at=none
  for k in $(seq 0 $((n - 1))); do
    node=${@:$(((start + k) % n + 1)):1}
    out=$(timeout 2 $CLI -h ${node%:*} -p ${node#*:} CLUSTER INFO 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_state://p')
    if [ -n "$out" ]; then answered=$node; cluster=$out; at=$(((start + k) % n)); break; fi
  done
  write=none; skipped=""; retried=""
  if [ "$answered" != none ]; then
    for attempt in 1 2 3; do
      for k in $(seq 0 $((n - 1))); do
        entry=${@:$(((at + k) % n + 1)):1}
        # -c follows MOVED and prints "-> Redirected to slot [s] located at host:port" first.
        out=$(timeout 5 $CLI -c -h ${entry%:*} -p ${entry#*:} SET "ai:probe:{$((i % 16))}" "$i" 2>&1 | tr -d '\r')
        via=$(printf '%s\n' "$out" | sed -n 's/^-> Redirected to slot \[[0-9]*\] located at //p' | tail -n 1)
        write=$(printf '%s\n' "$out" | grep -v '^-> Redirected' | tr '\n' ' ' | sed 's/ $//')
        case "$write" in
          "Could not connect to Redis at $entry:"*) skipped="$skipped $entry" ;;
          CLUSTERDOWN*) [ -z "$via" ] || break; skipped="$skipped $entry:CLUSTERDOWN" ;;
          *) break ;;
        esac
      done
      case "$write" in CLUSTERDOWN*) [ $attempt -lt 3 ] || break; retried="$retried $entry>${via:-$entry}:${write%% *}"; sleep 0.25 ;; *) break ;; esac
    done
  fi
  echo "$(date +%s.%N) $answered cluster_state=$cluster entry_refused=[${skipped# }] retried=[${retried# }] write=$write"
  i=$((i + 1)); sleep 0.2
done
"""


def test_restart_only_setting_rolls_one_instance_at_a_time(ansible_playbook, hosts, admin, addresses):
    probe_host = hosts["redis-1"]
    keys = ["ai:roll:%d" % i for i in range(200)]
    written = probe_host.run("printf 'SET %s v-%s\\n' {} | {} -c -h 127.0.0.1 -p 6380".format(
        " ".join("{0} {0}".format(k) for k in keys), admin))
    assert replies(written.stdout) == ["OK"] * len(keys), written.stdout[-500:]
    before = state(hosts, admin)
    assert {v["config-tcp-backlog"] for v in before.values()} == {"511"}
    nodes = " ".join("{}:{}".format(addresses[name], port) for name, port in sorted(before))
    probe_host.run("rm -f /tmp/cluster-probe.*; cat > /tmp/cluster-probe.sh <<'EOF'\n%sEOF" % PROBE)
    password = probe_host.ansible.get_variables()["redis_admin_password"]
    probe_host.run("(export REDISCLI_AUTH=%s CLI=%s; nohup bash /tmp/cluster-probe.sh %s < /dev/null > /tmp/cluster-probe.log 2>&1 &"
                   " echo $! > /tmp/cluster-probe.pid)" % (_q(password), _q(CLI_ADMIN), nodes))
    try:
        converge(ansible_playbook, {"redis_maxmemory_policy": CHANGED_POLICY, "redis_tcp_backlog": CHANGED_BACKLOG})
    finally:
        probe_host.run("touch /tmp/cluster-probe.stop; while kill -0 $(cat /tmp/cluster-probe.pid) 2>/dev/null; do sleep 0.2; done")
    after = state(hosts, admin)
    probe = probe_host.file("/tmp/cluster-probe.log").content_string.splitlines()

    # Every instance restarted, with the new setting; the runtime setting survived the restart.
    assert restarted(before, after) == sorted(before), "not restarted: %s" % sorted(set(before) - set(restarted(before, after)))
    for node, values in after.items():
        assert values["config-tcp-backlog"] == str(CHANGED_BACKLOG), node
        assert values["config-maxmemory-policy"] == CHANGED_POLICY, node
        assert values["pending"] == "0", node
        # Primaries end where they were (on their planned hosts), replicas under the same primaries.
        assert values["role"] == before[node]["role"], node
        assert values.get("master_host") == before[node].get("master_host"), node

    # One at a time, each as a replica: a primary only after its replica took over.
    windows = []
    for node, lines in new_log_lines(hosts, before).items():
        parsed = [m.groups() for m in map(LOG_LINE.match, lines) if m]
        stops = [(role, when) for role, when, text in parsed if text.startswith("User requested shutdown")]
        readies = [when for _role, when, text in parsed if text.startswith("Ready to accept connections")]
        assert len(stops) == 1 and len(readies) == 1, (node, lines[-20:])
        assert stops[0][0] == "S", "{} stopped while primary (role {}) ".format(node, stops[0][0])
        windows.append((_log_time(stops[0][1]), _log_time(readies[0]), node))
    windows.sort()
    for (_stopped, end, node), (start, _ready, following) in zip(windows, windows[1:]):
        assert end < start, "{} stopped before {} was back".format(following, node)

    # The cluster took writes all along, for a client that retries CLUSTERDOWN the way cluster
    # clients do during a failover (the probe's retried=[...] shows each refusal and which node
    # gave it). (A node that just started may say cluster_state=fail for a moment before it has
    # heard from the others; the probe logs what it saw, for diagnosis.)
    assert len(probe) >= 10, probe
    bad = [line for line in probe if line.split()[1] == "none" or not line.endswith(" write=OK")]
    retried = [line for line in probe if "retried=[]" not in line]
    assert bad == [], "refused writes:\n{}\nretried:\n{}".format("\n".join(bad[:10]), "\n".join(retried[:10]))
    # A refusal is a moment, not a state: at most one probe round in ten needed a retry.
    assert len(retried) * 10 <= len(probe), "\n".join(retried[:20])

    read = probe_host.run("printf 'GET %s\\n' {} | {} -c -h 127.0.0.1 -p 6381".format(" ".join(keys), admin))
    assert replies(read.stdout) == ["v-" + k for k in keys]
    probe_host.run("printf 'DEL %s\\n' {} | {} -c -h 127.0.0.1 -p 6380 > /dev/null".format(
        " ".join(keys + ["ai:probe:{%d}" % i for i in range(16)]), admin))


def test_an_instance_that_cannot_come_back_fails_the_run_with_its_reason(ansible_playbook, hosts, admin):
    """A replica whose unit cannot start (a systemd drop-in pointing ExecStart at nothing, as a
    broken package or a full disk would stop it): the rolling restart fails on that instance with
    its Redis log (the shutdown the restart began) and its journal (systemd's reason), not only
    systemd's "see journalctl". Its marker stays, so the run after the cause is gone restarts it."""
    before = state(hosts, admin)
    name = "redis-3"
    port = min(p for (h, p), values in before.items() if h == name and values["role"] == "slave")
    host = hosts[name]
    unit = "redis-server@{}.service".format(port)
    dropin = "/etc/systemd/system/{}.d".format(unit)
    marker = "/etc/redis/restart-pending/{}".format(port)
    host.run_expect([0], "mkdir -p {d} && printf '[Service]\\nExecStart=\\nExecStart=/nonexistent/redis-server\\n'"
                         " > {d}/zz-test-cannot-start.conf && systemctl daemon-reload && touch {m}".format(d=dropin, m=marker))
    try:
        # Only the restart play's work (the first play loads its plan, tagged always).
        failed = ansible_playbook("converge.yml", tags="redis_restart")
        marker_kept = host.file(marker).exists
        # Only that instance is down; the cluster serves every slot from the primaries.
        other = next(p for p in PORTS if p != port)
        during = host.run("{} -h 127.0.0.1 -p {} CLUSTER INFO".format(admin, other)).stdout
    finally:
        # The cause gone, the next run restarts it (and the later tests find the cluster whole).
        host.run_expect([0], "rm -rf {} && systemctl daemon-reload && (systemctl reset-failed {} || true)".format(dropin, unit))
        recovered = ansible_playbook("converge.yml", tags="redis_restart")
    # The failure goes to standard error (the default callback's fatal: lines).
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-3000:]
    assert re.search(r"fatal: \[{}\]".format(name), output), output[-3000:]
    assert "Redis is now ready to exit" in output, output[-3000:]                # its own log
    assert re.search(r"Failed at step EXEC|status=203/EXEC", output), output[-3000:]  # its journal
    assert marker_kept
    assert "cluster_state:ok" in during, during

    assert recovered.returncode == 0, recovered.stdout[-4000:] + recovered.stderr[-2000:]
    after = state(hosts, admin)
    assert after[(name, port)]["pending"] == "0"
    assert after[(name, port)]["role"] == "slave"
    assert after[(name, port)]["master_link_status"] == "up"
    assert restarted(before, after) == [(name, port)]


def _log_time(text: str) -> datetime:
    return datetime.strptime(text, "%d %b %Y %H:%M:%S.%f")


# --- The administrator password: out of process lists, rolled out without a restart ------------
ROTATED_ADMIN = "molecule-admin-rotated-0009"
PS_WATCH = ("nohup sh -c 'end=$(($(date +%s)+900)); while [ ! -e /tmp/ps-stop ] && [ $(date +%s) -lt $end ];"
            " do ps -eo args >> /tmp/ps-capture; sleep 0.05; done' > /dev/null 2>&1 &")


def _as_admin(host, password: str, port: int, *commands: str) -> str:
    """redis-cli as the administrator, the password given the way the role gives it: the first
    line of stdin (--askpass), the commands after it. Its output, standard error included."""
    lines = " ".join(_q(line) for line in (password,) + commands)
    return host.run("printf '%s\\n' " + lines + " | redis-cli --tls --cacert " + CA
                    + " --user admin --askpass -h 127.0.0.1 -p " + str(port) + " 2>&1").stdout.replace("\r", "")


def _admin_answer(host, password: str, port: int) -> str:
    """PING as the administrator."""
    return _as_admin(host, password, port, "PING").strip()


def test_policy_back_and_admin_password_rotated_in_place_out_of_ps(ansible_playbook, hosts, admin):
    """Two changes that need no restart, in one run: the policy back to its default while
    tcp-backlog stays (CONFIG SET again), and a new redis_admin_password on the running cluster (the
    run authenticates with the password the instances hold; every instance then accepts only the
    new one). No process list of the run (polled every 50 ms on every host) shows either password.
    A second run puts the inventory's password back the same way, for the later tests.
    (tcp-backlog going back would be one more rolling restart like the one above: a few minutes of
    CI for nothing new; the later tests do not depend on it.)"""
    old = hosts["redis-1"].ansible.get_variables()["redis_admin_password"]
    before = state(hosts, admin)
    for host in hosts.values():
        host.run_expect([0], "rm -f /tmp/ps-stop /tmp/ps-capture && " + PS_WATCH)
    try:
        try:
            converge(ansible_playbook, {"redis_admin_password": ROTATED_ADMIN, "redis_tcp_backlog": CHANGED_BACKLOG})
        finally:
            captures = {}
            for name, host in hosts.items():
                host.run("touch /tmp/ps-stop; sleep 0.2")
                captures[name] = host.run("cat /tmp/ps-capture").stdout
        for name, capture in captures.items():
            # the watcher saw the run's module processes, so it would have seen a password beside them
            assert "AnsiballZ_command.py" in capture or "/usr/bin/python3" in capture, capture[-2000:]
            assert old not in capture, "the old administrator password showed in ps on %s" % name
            assert ROTATED_ADMIN not in capture, "the new administrator password showed in ps on %s" % name
        for name, host in hosts.items():
            for port in PORTS:
                assert _admin_answer(host, ROTATED_ADMIN, port) == "PONG", (name, port)
                refused = _admin_answer(host, old, port)
                assert "WRONGPASS invalid username-password pair" in refused, (name, port, refused)
                # one password left for the user, the new one's SHA-256 (worked out here)
                user = _as_admin(host, ROTATED_ADMIN, port, "ACL GETUSER admin").split()
                passwords = user[user.index("passwords") + 1:user.index("commands")]
                assert passwords == [hashlib.sha256(ROTATED_ADMIN.encode()).hexdigest()], (name, port, passwords)
            record = host.file("/etc/redis/admin.secret")
            assert (record.user, record.group, record.mode) == ("root", "root", 0o600)
    finally:
        # back to the inventory's password, the same way (the later tests use it)
        converge(ansible_playbook, {"redis_tcp_backlog": CHANGED_BACKLOG})
    for name, host in hosts.items():
        for port in PORTS:
            assert _admin_answer(host, old, port) == "PONG", (name, port)
            assert "WRONGPASS" in _admin_answer(host, ROTATED_ADMIN, port), (name, port)
    after = state(hosts, admin)
    for node, values in after.items():
        assert values["config-maxmemory-policy"] == "allkeys-lru", node
        assert values["file-maxmemory-policy"] == "allkeys-lru", node
        assert values["pending"] == "0", node
        assert values["role"] == before[node]["role"], node
    # neither run restarted an instance
    assert restarted(before, after) == []


def test_monitoring_user_cannot_read_secrets_or_data(hosts):
    """The exporter's user reads INFO and the cluster's state, but not the configuration (masterauth
    holds the replication password) nor any key; ACL DRYRUN is the server's own permission check."""
    password = hosts["redis-1"].ansible.get_variables()["redis_admin_password"]
    checks = ["CONFIG GET masterauth", "CONFIG GET *", "GET ai:x", "PSYNC ? -1", "ACL LIST", "INFO", "CLUSTER INFO"]
    answers = _as_admin(hosts["redis-1"], password, 6380, *["ACL DRYRUN monitor " + c for c in checks]).splitlines()
    assert answers == [
        "This user has no permissions to run the 'config|get' command",
        "This user has no permissions to run the 'config|get' command",
        "This user has no permissions to run the 'get' command",
        "This user has no permissions to run the 'psync' command",
        "This user has no permissions to run the 'acl|list' command",
        "OK",
        "OK",
    ], answers
