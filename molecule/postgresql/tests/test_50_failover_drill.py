"""The failover drills of issue 20, run last on the converged Patroni cluster, each with a real
client (tests/clients/writer.py on pg-client) committing one row at a time through the read-write
endpoint (HAProxy, port 5000, on every server; libpq's multi-host list of the three):
  1. pg1's container is killed: Patroni promotes the synchronous standby, the endpoint serves writes
     again, every commit the client saw acknowledged is on the new primary, and pg1, started again,
     rejoins as a replica with nobody running anything;
  2. the synchronous standby stops: writes go on (synchronous_mode_strict is off);
  3. a planned switchover with playbooks/promote.yml;
  4. one etcd member stops: nothing changes; a quorum of them stops: the primary keeps serving.
The client-observed times are printed as the "drill:" lines of the verify log.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

import pytest
import testinfra

from cluster import ADDRESSES, INVENTORY, UNIT, hosts, playbook, sql  # noqa: F401 (hosts: a fixture)  # pylint: disable=unused-import
from conftest import wait_until

WRITER = os.path.join(os.path.dirname(__file__), "clients", "writer.py")
CA = "/etc/ssl/certs/onprem-postgresql-ca.crt"
# The three endpoints; verify-ca: the endpoint's address is not the name in the server's certificate.
CONNINFO = ("host=%s port=5000 dbname=appdb user=app_service sslmode=verify-ca sslrootcert=%s connect_timeout=2 "
            "target_session_attrs=read-write" % (",".join(ADDRESSES.values()), CA))
# In the schema app_service's search_path names (molecule.yml): the writer inserts into "drill_writes".
TABLE = "app_schema.drill_writes"
FIGURES = []


@pytest.fixture(scope="module")
def client():
    host = testinfra.get_host(f"ansible://pg-client?ansible_inventory={INVENTORY}")
    # The password goes in a file copied into the container: never on a command line.
    with tempfile.TemporaryDirectory() as scratch:
        pgpass = os.path.join(scratch, "pgpass")
        with open(os.open(pgpass, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as out:
            out.write("*:5000:appdb:app_service:molecule-only-app-service\n")
        subprocess.run(["docker", "cp", pgpass, "pg-client:/root/.pgpass"], check=True, capture_output=True)
    subprocess.run(["docker", "cp", WRITER, "pg-client:/root/writer.py"], check=True, capture_output=True)
    host.check_output("chown root:root /root/.pgpass /root/writer.py && chmod 0600 /root/.pgpass")
    return host


def leader(hosts) -> str:
    """The member whose PostgreSQL is not in recovery (asked on each that answers)."""
    for name, host in hosts.items():
        run = host.run("runuser -u postgres -- psql -XAtq -d postgres -c 'SELECT pg_is_in_recovery()'")
        if run.rc == 0 and run.stdout.strip() == "f":
            return name
    return ""


def start_writer(client, hosts, seconds: int, log: str):
    """The writer numbers its rows from 1: the table is emptied on the primary first."""
    sql(hosts[leader(hosts)], "TRUNCATE %s" % TABLE)
    client.run("rm -f %s; nohup python3 /root/writer.py %s %s %s >/dev/null 2>&1 &", log, str(seconds), log, CONNINFO)
    assert wait_until(lambda: client.run("grep -c '^ok ' %s", log).stdout.strip() not in ("", "0"), timeout=20), \
        client.run("cat %s", log).stdout[-2000:]


def finish_writer(client, log: str):
    assert wait_until(lambda: client.run("grep -q '^done ' %s", log).rc == 0, timeout=180, interval=2)
    acked, errors = [], []
    for line in client.check_output("cat %s", log).splitlines():
        parts = line.split(" ", 2)
        if parts[0] == "ok":
            acked.append((int(parts[1]), float(parts[2])))
        elif parts[0] == "err":
            errors.append(line)
    return acked, errors


def longest_pause(acked, after: float) -> float:
    """The longest time between two acknowledged writes around `after` (the event)."""
    times = [at for _ident, at in acked]
    gaps = [b - a for a, b in zip(times, times[1:]) if b >= after]
    return max(gaps) if gaps else float("inf")


def all_on(host, acked) -> int:
    ids = ",".join(str(ident) for ident, _at in acked)
    return int(sql(host, "SELECT count(*) FROM %s WHERE id IN (%s)" % (TABLE, ids)))


def report(capsys, name: str, seconds: float, detail: str):
    """Printed past pytest's capture, so that the verify log shows it for a passing test too."""
    FIGURES.append((name, seconds))
    with capsys.disabled():
        print("\ndrill: %s: %.1f s (%s)" % (name, seconds, detail))


def test_drill_kill_the_primary_while_a_client_writes(hosts, client, capsys):
    primary = leader(hosts)
    assert primary == "pg1"
    sql(hosts[primary], "CREATE TABLE IF NOT EXISTS %s (id int PRIMARY KEY, at timestamptz DEFAULT now())" % TABLE)
    sql(hosts[primary], "GRANT SELECT, INSERT ON %s TO app_service" % TABLE)
    start_writer(client, hosts, 75, "/root/kill.log")
    time.sleep(5)
    killed_at = time.time()
    subprocess.run(["docker", "kill", "pg1"], check=True, capture_output=True)
    acked, errors = finish_writer(client, "/root/kill.log")
    after = [at for _ident, at in acked if at > killed_at]
    assert after, "no write was accepted after the kill: %s" % errors[-5:]
    survivors = {name: host for name, host in hosts.items() if name != "pg1"}
    new = leader(survivors)
    # synchronous mode: only the synchronous standby may be promoted
    assert new == "pg2", new
    # every acknowledged commit is on the new primary
    assert all_on(hosts[new], acked) == len(acked), "acknowledged writes lost"
    # The client's outage: from its last write acknowledged before the kill to its first one after.
    report(capsys, "primary killed -> writes accepted again through the endpoint", longest_pause(acked, killed_at),
           "%d acknowledged writes, 0 lost, %d failed attempts; target 30 s" % (len(acked), len(errors)))

    # pg1 comes back: Patroni rejoins it as a replica of pg2 (pg_rewind), with nobody running anything.
    started = time.time()
    subprocess.run(["docker", "start", "pg1"], check=True, capture_output=True)
    pg1 = testinfra.get_host(f"ansible://pg1?ansible_inventory={INVENTORY}")
    assert wait_until(lambda: pg1.run("runuser -u postgres -- psql -XAtq -d postgres -c %s",
                                      "SELECT status FROM pg_stat_wal_receiver").stdout.strip() == "streaming",
                      timeout=180, interval=3), pg1.run("journalctl -u %s -n 30 --no-pager", UNIT).stdout
    assert sql(pg1, "SELECT pg_is_in_recovery()") == "t"
    assert wait_until(lambda: all_on(pg1, acked) == len(acked), timeout=30)
    report(capsys, "old primary back as a replica after its container started", time.time() - started, "Patroni, pg_rewind")


def test_drill_stop_the_synchronous_standby_writes_go_on(hosts, client, capsys):
    primary = leader(hosts)
    assert primary == "pg2"
    # pg1 is the synchronous standby again (pg3 is marked asynchronous: never synchronous)
    assert wait_until(lambda: sql(hosts[primary], "SELECT application_name, sync_state FROM pg_stat_replication "
                                                  "WHERE sync_state = 'sync'", db="postgres") == "pg1|sync", timeout=60)
    start_writer(client, hosts, 30, "/root/sync.log")
    time.sleep(3)
    stopped_at = time.time()
    hosts["pg1"].check_output("systemctl stop %s", UNIT)
    try:
        acked, errors = finish_writer(client, "/root/sync.log")
        assert [at for _ident, at in acked if at > stopped_at + 5], "writes stopped with the synchronous standby: %s" % errors[-5:]
        assert sql(hosts[primary], "SHOW synchronous_standby_names", db="postgres") == ""
        assert all_on(hosts[primary], acked) == len(acked)
        report(capsys, "synchronous standby stopped -> longest write pause", longest_pause(acked, stopped_at),
               "non-strict synchronous mode, %d acknowledged writes" % len(acked))
    finally:
        hosts["pg1"].check_output("systemctl start %s", UNIT)
    assert wait_until(lambda: sql(hosts[primary], "SHOW synchronous_standby_names", db="postgres") == "pg1",
                      timeout=90, interval=2)


def test_drill_planned_switchover_with_promote_yml(hosts, client, ansible_playbook, capsys):
    start_writer(client, hosts, 40, "/root/switch.log")
    time.sleep(3)
    begun = time.time()
    run, out = playbook(ansible_playbook, "promote.yml", {"promote_target": "pg1"})
    assert run.returncode == 0, out[-4000:]
    assert "Handed the primary role to pg1 (planned switchover): Successfully switched over to" in out
    acked, _errors = finish_writer(client, "/root/switch.log")
    assert leader(hosts) == "pg1"
    assert all_on(hosts["pg1"], acked) == len(acked)
    report(capsys, "planned switchover (promote.yml) -> longest write pause", longest_pause(acked, begun), "target 10 s")
    # pg2 follows pg1 and is its synchronous standby
    assert wait_until(lambda: sql(hosts["pg1"], "SHOW synchronous_standby_names", db="postgres") == "pg2", timeout=60)


def test_promote_refuses_the_asynchronous_replica(ansible_playbook):
    run, out = playbook(ansible_playbook, "promote.yml", {"promote_target": "pg3"})
    assert run.returncode != 0
    assert "pg3 is not the synchronous standby (its role: replica)" in out, out[-3000:]


def test_promote_refuses_the_primary_itself(ansible_playbook):
    run, out = playbook(ansible_playbook, "promote.yml", {"promote_target": "pg1"})
    assert run.returncode != 0
    assert "pg1 is the primary already" in out, out[-3000:]


def test_drill_etcd_losses(hosts, client, capsys):
    """One etcd member down: nothing changes. Two of three (no quorum): Patroni's failsafe mode keeps
    the primary, which every member still sees, serving."""
    primary = leader(hosts)
    start_writer(client, hosts, 45, "/root/etcd.log")
    time.sleep(3)
    hosts["pg3"].check_output("systemctl stop etcd")
    one_down = time.time()
    time.sleep(10)
    hosts["pg2"].check_output("systemctl stop etcd")
    quorum_lost = time.time()
    try:
        acked, errors = finish_writer(client, "/root/etcd.log")
        assert leader(hosts) == primary
        assert [at for _ident, at in acked if at > quorum_lost + 25], "writes stopped without etcd's quorum: %s" % errors[-5:]
        assert all_on(hosts[primary], acked) == len(acked)
        report(capsys, "etcd: one member, then a quorum lost -> longest write pause", longest_pause(acked, one_down),
               "failsafe_mode; %d acknowledged writes" % len(acked))
    finally:
        hosts["pg2"].run("systemctl start etcd")
        hosts["pg3"].run("systemctl start etcd")


def test_replication_status_shows_the_members(ansible_playbook):
    run = ansible_playbook("../../playbooks/replication_status.yml", {})
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "Patroni cluster postgresql-15-main (3 members)" in out
    assert "pg1: PRIMARY" in out and "WAL receiver: streaming from" in out
