"""redis_cluster failover drills: run after the other checks (they move primaries, and put them back).

The first fails one primary over; the second stops a whole host and measures, through redis-py,
how long an application's writes wait (scripts/bench.sh step redisfailover measures the same
with the role's defaults on the sandbox's hosts).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import testinfra

import test_redis_clients
from conftest import wait_until
from test_redis_cluster import PORTS, cli, cluster_nodes, info, slot_owner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ["redis-1", "redis-2", "redis-3"]
CLIENT_DIR = test_redis_clients.CLIENT_DIR
# fixtures: redis-py as test_redis_clients.py installs it, the scenario's CA and passwords
installed_clients = test_redis_clients.installed_clients
ca_file = test_redis_clients.ca_file
redis1 = test_redis_clients.redis1
secrets = test_redis_clients.secrets


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


def test_client_writes_resume_when_a_host_with_two_primaries_stops(installed_clients, ca_file, secrets, tmp_path,
                                                                   capsys):
    """A host that serves 2 of the 6 primaries stops answering (every redis-server on it gets
    SIGSTOP: a hung VM keeps its TCP connections open, unlike a crash). An application writing
    through redis-py's RedisCluster, to every shard in turn, waits until the cluster has failed
    those shards over to their replicas and the client has found the new primaries: the longest
    time a shard took no write from it is printed, with the fail-back (a planned switchover)
    measured the same way. make bench measures the role's default node timeout; this scenario
    runs 3000 ms, and the bound asserted here only catches a failover that does not come at all."""
    hosts = {name: testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}") for name in HOSTS}

    def cluster_ok():
        return all(info(cli(h, port, "CLUSTER", "INFO").stdout).get("cluster_state") == "ok"
                   for h in hosts.values() for port in PORTS)

    def ports_as(host, ports, role):
        for port in ports:
            state = info(cli(host, port, "INFO", "replication").stdout)
            if state.get("role") != role or (role == "slave" and state.get("master_link_status") != "up"):
                return False
        return True

    # the previous drill's fail-back has settled: 6 primaries, 2 on each host
    assert wait_until(cluster_ok, 30, interval=1)
    ip_of = {name: h.check_output("hostname -I").split()[0] for name, h in hosts.items()}
    host_of_ip = {ip: name for name, ip in ip_of.items()}
    nodes = cluster_nodes(cli(hosts["redis-1"], 6380, "CLUSTER", "NODES").stdout)
    primaries_on = {}
    for node_id, node in nodes.items():
        if "master" in node["flags"]:
            primaries_on.setdefault(host_of_ip[node["ip"]], []).append(node_id)
    # 2 of 6: the 4 others are the majority that votes the failovers
    stopped_name = next(name for name in ("redis-2", "redis-3", "redis-1") if len(primaries_on.get(name, [])) == 2)
    stopped = hosts[stopped_name]
    entry_name = next(name for name in HOSTS if name != stopped_name)
    entry = hosts[entry_name]
    stopped_primaries = sorted(nodes[i]["port"] for i in primaries_on[stopped_name])
    node_timeout = int(cli(entry, 6380, "CONFIG", "GET", "cluster-node-timeout").stdout.split()[1]) / 1000
    bound = 2 * node_timeout + 10

    # One hash tag per shard, by the server's CLUSTER KEYSLOT: the client writes every shard in turn.
    candidates = ["f%d" % i for i in range(200)]
    slots = cli(entry, 6380, stdin=["CLUSTER KEYSLOT {%s}" % tag for tag in candidates]).stdout.split()
    tags = {}
    for tag, slot in zip(candidates, slots):
        tags.setdefault(slot_owner(nodes, int(slot)), tag)
    assert len(tags) == 6, tags

    status = tmp_path / "status.json"
    args = {"host": ip_of[entry_name], "port": 6380, "ca": ca_file, "user": "ai-service", "name": "failover-drill",
            "tags": sorted(tags.values()), "status": str(status), "socket_timeout": 1.0, "wait_ms": 50}
    out, err = tmp_path / "client.out", tmp_path / "client.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        client = subprocess.Popen(
            [sys.executable, "-s", str(CLIENT_DIR / "failover_client.py"), json.dumps(args)], stdout=stdout,
            stderr=stderr, env=dict(os.environ, PYTHONPATH=str(installed_clients["redis-py-8.2.0"]),
                                    REDIS_PASSWORD=secrets["app"]))

    def written_since(moment):
        """Whether the client had a write accepted on every shard after `moment`."""
        try:
            last = json.loads(status.read_text())["last_ok"]
        except (OSError, ValueError):
            return False
        return len(last) == len(tags) and min(last.values()) > moment

    try:
        assert wait_until(lambda: written_since(0), 30), err.read_text()[-3000:]
        pids = [stopped.check_output("systemctl show -p MainPID --value redis-server@%d.service" % port)
                for port in PORTS]
        assert all(pid.isdigit() and pid != "0" for pid in pids), pids
        stopped.run_expect([0], "kill -STOP %s" % " ".join(pids))
        # after kill returned: no write accepted later can come from the stopped primaries
        paused_at = time.time()
        try:
            resumed_writes = wait_until(lambda: written_since(paused_at), bound, interval=0.2)
            time.sleep(1)  # a second of writes to the new primaries while the old ones are still stopped
        finally:
            stopped.run("kill -CONT %s" % " ".join(pids))
            continued_at = time.time()
        assert resumed_writes, "no write on every shard within %.0f s of the stop (node timeout %.0f s)" % (
            bound, node_timeout)
        # The stopped primaries come back as replicas of their former replicas.
        assert wait_until(lambda: ports_as(stopped, stopped_primaries, "slave") and cluster_ok(), 60, interval=1), \
            cli(entry, 6380, "CLUSTER", "NODES").stdout

        # Fail back (CLUSTER FAILOVER on each, as the role's verification does): a planned switchover,
        # which leaves the placement test_redis_scale.py expects.
        switch_at = time.time()
        for port in stopped_primaries:
            assert cli(stopped, port, "CLUSTER", "FAILOVER").stdout.strip() == "OK"
        assert wait_until(lambda: ports_as(stopped, stopped_primaries, "master"), 30, interval=0.5)
        switched_at = time.time()
        assert wait_until(lambda: written_since(switched_at), 30, interval=0.2), err.read_text()[-3000:]
        written_at = time.time()
        assert wait_until(cluster_ok, 30, interval=1), cli(entry, 6380, "CLUSTER", "NODES").stdout
    finally:
        client.send_signal(signal.SIGTERM)
        try:
            client.wait(timeout=120)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
    assert client.returncode == 0, out.read_text()[-2000:] + err.read_text()[-3000:]
    seen = json.loads(out.read_text().splitlines()[-1])

    def longest(gaps, start, end):
        return max([b - a for a, b in gaps if b > start and a < end], default=0.0)

    outage = longest([gap[1:] for gap in seen["shard_gaps"]], paused_at, continued_at)
    held_up = longest(seen["stalls"], paused_at, continued_at)
    switchover = longest(seen["stalls"], switch_at, written_at)
    with capsys.disabled():
        print("\nredis failover as redis-py %s sees it (socket timeout 1 s): %s stopped (primaries on ports %s), "
              "node timeout %.1f s: a shard took no write for %.1f s at most (bound %.0f s), the client waited "
              "%.1f s at most for one write; fail-back (CLUSTER FAILOVER): %.1f s; %d writes accepted, %d confirmed "
              "by WAIT 1, lost: %d confirmed, %d unconfirmed; client errors %s"
              % (seen["version"], stopped_name, stopped_primaries, node_timeout, outage, bound, held_up, switchover,
                 seen["accepted"], seen["confirmed"], seen["lost_confirmed_count"], seen["lost_accepted_count"],
                 seen["errors"]))
    # Every write a replica confirmed is there after both failovers.
    assert seen["confirmed"] > 0 and seen["lost_confirmed_count"] == 0, seen["lost_confirmed"]
    # No failover can come before the node timeout: a shorter outage means the drill stopped nothing.
    assert node_timeout <= outage < bound, seen["shard_gaps"]
