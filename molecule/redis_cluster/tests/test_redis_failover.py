"""redis_cluster failover drill: runs after the other checks (it moves a primary)."""

import re

import pytest

from conftest import wait_until
from test_redis_cluster import cli, cluster_nodes, info


def _hash_tag_served_by(host, port) -> str:
    """A hash tag whose slot the primary on `port` of this host serves: every key that carries it
    is written to that primary, the one the drill fails over."""
    nodes = cluster_nodes(cli(host, port, "CLUSTER", "NODES").stdout)
    myself = next(n for n in nodes.values() if "myself" in n["flags"])
    tags = ["{drill%d}" % i for i in range(100)]
    slots = cli(host, port, stdin=["CLUSTER KEYSLOT %s" % tag for tag in tags]).stdout.split()
    assert len(slots) == len(tags), slots
    return next(tag for tag, slot in zip(tags, slots) if any(a <= int(slot) <= b for a, b in myself["slots"]))


def test_failover_drill_keeps_acknowledged_writes(host):
    if host.backend.get_hostname() != "redis-1":
        pytest.skip("once per cluster")
    # The primary on 6380 and its replica (on another host).
    before = info(cli(host, 6380, "INFO", "replication").stdout)
    assert before["role"] == "master", before
    replica_ip, replica_port = re.match(r"ip=([^,]+),port=(\d+),", before["slave0"]).groups()

    # Acknowledged write: the client saw SET answer OK and then WAIT 1, on the same connection,
    # answer that 1 replica has every write of that connection. Redis replicates asynchronously:
    # only such a write is promised to survive the primary's loss. All keys go to the primary
    # that fails (one hash tag), each SET followed by its WAIT.
    tag = _hash_tag_served_by(host, 6380)
    keys = ["ai:drill:%s:%d" % (tag, i) for i in range(50)]
    commands = []
    for key in keys:
        commands += ["SET %s ok" % key, "WAIT 1 2000"]
    replies = cli(host, 6380, stdin=commands).stdout.replace("\r", "").splitlines()
    assert len(replies) == 2 * len(keys), replies
    acknowledged = [key for key, set_reply, wait_reply in zip(keys, replies[::2], replies[1::2])
                    if set_reply == "OK" and wait_reply.isdigit() and int(wait_reply) >= 1]
    # a healthy replica acknowledges each write well within WAIT's 2 s
    assert acknowledged == keys, list(zip(replies[::2], replies[1::2]))

    # Pause the primary beyond cluster-node-timeout (3 s) until its replica has taken over: the
    # replica itself says it is a primary, and the cluster is ok again. (Reading only "master,fail"
    # in CLUSTER NODES was a race: the primary could resume before the replica's election.)
    pid = host.check_output("systemctl show -p MainPID --value redis-server@6380.service")
    host.run("kill -STOP %s", pid)
    try:
        def promoted():
            role = info(cli(host, replica_port, "INFO", "replication", target=replica_ip).stdout).get("role")
            return role == "master" and info(cli(host, 6381, "CLUSTER", "INFO").stdout).get("cluster_state") == "ok"

        assert wait_until(promoted, 30, interval=1), cli(host, 6381, "CLUSTER", "NODES").stdout
    finally:
        host.run("kill -CONT %s", pid)
    assert wait_until(lambda: info(cli(host, 6380, "INFO", "replication").stdout).get("master_link_status") == "up",
                      30, interval=1), cli(host, 6380, "INFO", "replication").stdout
    assert info(cli(host, 6380, "INFO", "replication").stdout)["role"] == "slave"
    assert info(cli(host, 6380, "CLUSTER", "INFO").stdout)["cluster_state"] == "ok"
    # Every acknowledged write is on the new primary.
    values = cli(host, replica_port, "MGET", *acknowledged, target=replica_ip).stdout.replace("\r", "").splitlines()
    lost = [key for key, value in zip(acknowledged, values) if value != "ok"]
    assert len(values) == len(acknowledged) and not lost, lost or values
    # Put the primary back on its planned host, as the role's verification would.
    assert cli(host, 6380, "CLUSTER", "FAILOVER").stdout.strip() == "OK"
    assert wait_until(lambda: info(cli(host, 6380, "INFO", "replication").stdout)["role"] == "master", 30, interval=1)
