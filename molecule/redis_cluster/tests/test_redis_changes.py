"""redis_cluster: what a re-run of playbooks/redis.yml does to a running cluster.

Runs first (pytest takes files alphabetically): every test here puts the settings back, and
test_redis_cluster.py (maxmemory-policy, cluster state) would see anything left behind.

A runtime setting changes with CONFIG SET: same processes, new value in memory and on disk.
"""

from __future__ import annotations

import os

import pytest
import testinfra

from conftest import recap_changed
from test_redis_cluster import CA, PORTS, _q, info

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ["redis-1", "redis-2", "redis-3"]
# redis_maxmemory_policy (default allkeys-lru): applied with CONFIG SET.
CHANGED_POLICY = "allkeys-lfu"
CLI_ADMIN = "redis-cli --tls --cacert {} --user admin --no-auth-warning".format(CA)


@pytest.fixture(scope="module")
def hosts():
    return {name: testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}") for name in HOSTS}


@pytest.fixture(scope="module")
def admin(hosts):
    password = hosts["redis-1"].ansible.get_variables()["redis_admin_password"]
    return "env REDISCLI_AUTH={} {}".format(_q(password), CLI_ADMIN)


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
            port, _, body = block.partition("\n")
            lines = body.splitlines()
            values = info(body)
            for setting in ("maxmemory-policy", "tcp-backlog"):
                values["config-" + setting] = lines[lines.index(setting) + 1]
            result[(name, int(port))] = values
    assert len(result) == len(HOSTS) * len(PORTS)
    return result


def restarted(before: dict, after: dict) -> list:
    return sorted(node for node in after if after[node]["run_id"] != before[node]["run_id"])


def converge(ansible_playbook, extra_vars: dict | None = None):
    run = ansible_playbook("converge.yml", extra_vars)
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


def test_original_settings_come_back(ansible_playbook, hosts, admin):
    """The way back is one more run with the defaults (another rolling restart for tcp-backlog)."""
    before = state(hosts, admin)
    converge(ansible_playbook)
    after = state(hosts, admin)
    for node, values in after.items():
        assert values["config-maxmemory-policy"] == "allkeys-lru", node
        assert values["file-maxmemory-policy"] == "allkeys-lru", node
        assert values["config-tcp-backlog"] == "511", node
        assert values["file-tcp-backlog"] == "511", node
        assert values["pending"] == "0", node
        assert values["role"] == before[node]["role"], node
    if {v["config-tcp-backlog"] for v in before.values()} != {"511"}:
        assert restarted(before, after) == sorted(before)
