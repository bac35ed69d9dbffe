"""redis_cluster: growing the formed cluster from 6 to 7 shards with playbooks/redis_scale.yml.

Runs last (pytest takes files alphabetically): it leaves the cluster with 7 shards.

A re-run of redis.yml with more shards is refused before it changes anything; the scale playbook
adds the new shard's primary and replica around the formed instances (none of which moves or
restarts), reshards onto it while every key stays readable, and the next run of redis.yml with
7 shards changes nothing.
"""

from __future__ import annotations

import pytest

import test_redis_changes
from conftest import changed_tasks, recap_changed
from test_redis_cluster import _q, cluster_nodes

# fixtures: the same three hosts and the administrator's redis-cli as the re-run tests
hosts = test_redis_changes.hosts
admin = test_redis_changes.admin
KEYS = 300


@pytest.fixture(scope="module")
def grown(hosts):
    """redis_shards 7, and the tcp-backlog the instances run with (test_redis_changes.py leaves a
    restart-only value that the inventory does not hold): a growth restarts no formed instance."""
    backlog = hosts["redis-1"].check_output("sed -n 's/^tcp-backlog //p' /etc/redis/redis-6380.conf")
    return {"redis_shards": 7, "redis_tcp_backlog": int(backlog)}


def run(host, command):
    result = host.run(command)
    assert result.rc == 0, (command, result.stdout, result.stderr)
    return result.stdout.replace("\r", "")


def nodes(hosts, admin) -> dict:
    """host:port -> (role, primary's host:port, run_id, slot count), from CLUSTER NODES and INFO."""
    host_of_ip = {host.check_output("hostname -I").split()[0]: name for name, host in hosts.items()}
    by_id = cluster_nodes(run(hosts["redis-1"], f"{admin} -h 127.0.0.1 -p 6380 CLUSTER NODES"))
    name_of = {i: f"{host_of_ip[n['ip']]}:{n['port']}" for i, n in by_id.items()}
    result = {}
    for node_id, node in by_id.items():
        host = hosts[host_of_ip[node["ip"]]]
        run_id = [line for line in run(host, f"{admin} -h 127.0.0.1 -p {node['port']} INFO server").splitlines()
                  if line.startswith("run_id:")][0]
        role = "primary" if "master" in node["flags"] else "replica"
        slots = sum(last - first + 1 for first, last in node["slots"])
        result[name_of[node_id]] = (role, name_of.get(node["master"], ""), run_id, slots)
    return result


def running_ports(host) -> list[int]:
    units = host.check_output("systemctl list-units --state=running --plain --no-legend 'redis-server@*'")
    return sorted(int(line.split("@")[1].split(".")[0]) for line in units.splitlines() if line.strip())


def test_a_site_run_with_more_shards_is_refused_before_any_change(ansible_playbook, hosts, grown):
    before = {name: running_ports(host) for name, host in hosts.items()}
    run_ = ansible_playbook("../../playbooks/redis.yml", grown)
    assert run_.returncode != 0
    # the failure goes to stdout or stderr, wrapped, depending on the callback
    output = " ".join((run_.stdout + run_.stderr).split())
    assert "redis_shards is 7 but the formed cluster has 6 shards" in output, output[-3000:]
    assert "run playbooks/redis_scale.yml" in output
    assert recap_changed(run_.stdout) == 0, changed_tasks(run_.stdout)
    assert {name: running_ports(host) for name, host in hosts.items()} == before


def test_scale_adds_a_shard_around_the_formed_instances(ansible_playbook, hosts, admin, grown):
    entry = hosts["redis-1"]
    cluster = f"{admin} -c -h 127.0.0.1 -p 6380"
    keys = [f"ai:scale:{i}" for i in range(KEYS)]
    run(entry, "printf '%s\\n' {} | {} > /dev/null".format(" ".join(_q(f"SET {k} v{k}") for k in keys), cluster))
    before = nodes(hosts, admin)
    assert len(before) == 12

    grow = ansible_playbook("../../playbooks/redis_scale.yml", {**grown, "redis_cluster_reshard": True})
    assert grow.returncode == 0, grow.stdout[-5000:]

    after = nodes(hosts, admin)
    # every formed instance is where it was, in the same role, the same process
    assert {name: after[name][:3] for name in before} == {name: before[name][:3] for name in before}
    new = {name: after[name] for name in after if name not in before}
    assert len(new) == 2, new
    (primary,) = [name for name, node in new.items() if node[0] == "primary"]
    (replica,) = [name for name, node in new.items() if node[0] == "replica"]
    assert new[replica][1] == primary, "the new replica follows the new primary"
    assert primary.split(":")[0] != replica.split(":")[0], "the new replica is on its primary's host"
    # resharded: 7 primaries with a fair share each, every slot served
    shares = [node[3] for node in after.values() if node[0] == "primary"]
    assert len(shares) == 7 and sum(shares) == 16384, shares
    assert min(shares) >= 16384 // 7 * 0.95, shares
    # every key written before the growth reads back through the cluster
    # (redis-cli -c prints a "-> Redirected to slot ..." line before each redirected answer)
    values = run(entry, "printf '%s\\n' {} | {}".format(" ".join(_q(f"GET {k}") for k in keys), cluster))
    assert [v for v in values.splitlines() if not v.startswith("-> Redirected")] == [f"v{k}" for k in keys]
    for name, host in hosts.items():
        for port in running_ports(host):
            state = run(host, f"{admin} -h 127.0.0.1 -p {port} CLUSTER INFO")
            assert "cluster_state:ok" in state and "cluster_known_nodes:14" in state, (name, port, state)


def test_the_next_run_with_seven_shards_changes_nothing(ansible_playbook, grown):
    again = ansible_playbook("../../playbooks/redis.yml", grown)
    assert again.returncode == 0, again.stdout[-5000:]
    assert recap_changed(again.stdout) == 0, changed_tasks(again.stdout)
