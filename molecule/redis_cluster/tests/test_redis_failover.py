"""redis_cluster failover drill: runs after the other checks (it moves a primary)."""

import re
import time

import pytest

from conftest import wait_until
from test_redis_cluster import CA, cli, info


def test_failover_drill_keeps_acknowledged_writes(host):
    if host.backend.get_hostname() != "redis-1":
        pytest.skip("once per cluster")
    admin = "env REDISCLI_AUTH=molecule-admin-secret-0001 redis-cli --tls --cacert {} --user admin --no-auth-warning".format(CA)
    # Write keys through the cluster; WAIT 1 makes each acknowledged by a replica.
    keys = ["ai:drill:%d" % i for i in range(50)]
    for key in keys:
        assert host.run("{} -c -h 127.0.0.1 -p 6380 SET {} ok".format(admin, key)).rc == 0
    host.run("{} -h 127.0.0.1 -p 6380 WAIT 1 2000".format(admin))
    time.sleep(1)
    # The primary on 6380 and its replica (on another host).
    before = info(cli(host, 6380, "INFO", "replication").stdout)
    assert before["role"] == "master", before
    replica_ip, replica_port = re.match(r"ip=([^,]+),port=(\d+),", before["slave0"]).groups()
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
    wait_until(lambda: info(cli(host, 6380, "INFO", "replication").stdout).get("master_link_status") == "up", 30, interval=1)
    assert info(cli(host, 6380, "INFO", "replication").stdout)["role"] == "slave"
    assert info(cli(host, 6380, "CLUSTER", "INFO").stdout)["cluster_state"] == "ok"
    for key in keys:
        assert host.run("{} -c -h 127.0.0.1 -p 6381 GET {}".format(admin, key)).stdout.strip() == "ok", key
    # Put the primary back on its planned host, as the role's verification would.
    assert cli(host, 6380, "CLUSTER", "FAILOVER").stdout.strip() == "OK"
    wait_until(lambda: info(cli(host, 6380, "INFO", "replication").stdout)["role"] == "master", 30, interval=1)
    assert info(cli(host, 6380, "INFO", "replication").stdout)["role"] == "master"
