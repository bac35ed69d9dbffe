"""redis_cluster: the restore procedure of roles/redis/README.md, step by step, on one shard.

Runs after the failover drill: it takes the shard's slots offline for a moment.
"""

from __future__ import annotations

import os

import testinfra

from conftest import wait_until
from test_redis_cluster import CA, PORTS, _q, cluster_nodes, info, slot_owner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ["redis-1", "redis-2", "redis-3"]
KEY = "ai:restore:{drill}"


def test_restore_one_shard_from_its_backup():
    hosts = {name: testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}") for name in HOSTS}
    host_of_ip = {host.check_output("hostname -I").split()[0]: name for name, host in hosts.items()}
    password = hosts["redis-1"].ansible.get_variables()["redis_admin_password"]
    admin = "env REDISCLI_AUTH={} redis-cli --tls --cacert {} --user admin --no-auth-warning".format(_q(password), CA)
    entry = hosts["redis-1"]

    def run(host, command):
        result = host.run(command)
        assert result.rc == 0, (command, result.stdout, result.stderr)
        return result.stdout.replace("\r", "")

    # The shard that owns KEY: its primary P and replica R.
    slot = int(run(entry, "{} -h 127.0.0.1 -p 6380 CLUSTER KEYSLOT {}".format(admin, _q(KEY))))
    nodes = cluster_nodes(run(entry, "{} -h 127.0.0.1 -p 6380 CLUSTER NODES".format(admin)))
    primary_id = slot_owner(nodes, slot)
    replica = next(n for n in nodes.values() if n["master"] == primary_id)
    p_ip, p_port = nodes[primary_id]["ip"], nodes[primary_id]["port"]
    r_ip, r_port = replica["ip"], replica["port"]
    p_host, r_host = hosts[host_of_ip[p_ip]], hosts[host_of_ip[r_ip]]
    on_p = "{} -h 127.0.0.1 -p {}".format(admin, p_port)

    # A key the backup holds (acknowledged by the replica), then the backup the timer takes.
    assert run(p_host, "printf '%s\\n' {} 'WAIT 1 2000' | {}".format(_q("SET %s present-at-backup" % KEY), on_p)).split() \
        == ["OK", "1"]
    run(r_host, "systemctl start redis-backup.service")
    # Deleted after the backup.
    assert run(p_host, "printf '%s\\n' {} 'WAIT 1 2000' | {}".format(_q("DEL %s" % KEY), on_p)).split() == ["1", "1"]

    # 1. The newest snapshot of the shard (taken on the replica's host), copied to P's host.
    snapshot = run(r_host, "ls -1d /var/backups/redis/{}/dump-*.rdb | sort | tail -n 1".format(r_port)).strip()
    copy = "/var/tmp/" + os.path.basename(snapshot)
    data = run(r_host, "base64 -w0 {}".format(snapshot))
    assert len(data) < 100_000, "snapshot too large to copy through the command line"
    run(p_host, "echo {} | base64 -d > {}".format(data, copy))
    # 2. Stop R so that it cannot be promoted.
    run(r_host, "systemctl stop redis-server@{}".format(r_port))
    try:
        # 3. Restore P from the snapshot.
        restored = run(p_host, "redis-restore {} {}".format(p_port, copy))
        assert "restored" in restored
    finally:
        # 4. Start R; it resynchronises from P.
        run(r_host, "systemctl start redis-server@{}".format(r_port))

    def cluster_states():
        return {(name, port): info(out)["cluster_state"]
                for name, host in hosts.items()
                for port, out in zip(PORTS, run(host, "for p in {}; do {} -h 127.0.0.1 -p $p CLUSTER INFO; echo ==; done"
                                                      .format(" ".join(map(str, PORTS)), admin)).split("==")[:-1])}

    def settled():
        link = info(run(r_host, "{} -h 127.0.0.1 -p {} INFO replication".format(admin, r_port))).get("master_link_status")
        states = cluster_states()
        assert link == "up" and set(states.values()) == {"ok"}, (link, states)
        return True

    assert wait_until(settled, 60, interval=1)

    # The deleted key is back, through the cluster and on the resynchronised replica.
    assert run(entry, "{} -c -h 127.0.0.1 -p 6381 GET {}".format(admin, _q(KEY))).strip() == "present-at-backup"
    on_r = run(r_host, "printf '%s\\n' READONLY {} | {} -h 127.0.0.1 -p {}".format(_q("GET " + KEY), admin, r_port))
    assert on_r.split() == ["OK", "present-at-backup"]
    assert info(run(p_host, "{} INFO replication".format(on_p)))["role"] == "master"
