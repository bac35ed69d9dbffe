"""What a DBA checks on a Patroni cluster with a synchronous standby and an asynchronous read
replica: both stream over TLS through their own slots (Patroni's), the sync standby is the one
Patroni made synchronous, the replicas refuse writes, a check run of promote.yml changes nothing,
and a data directory of another cluster is refused. The failover drills (a killed primary, a lost
standby, a switchover, etcd's losses) are test_50_failover_drill.py, after the backup suite.

pg1 is the primary (zone 1), pg2 the sync standby (zone 2), pg3 the async replica (zone 3).
"""

from __future__ import annotations

import uuid

from cluster import (ADDRESSES, DATA_DIR, POSTGRESQL, UNIT, converge, count, hosts, playbook_check,  # noqa: F401 (hosts: a fixture)  # pylint: disable=unused-import
                     replication_rows, sql)
from conftest import changed_tasks, recap_changed, wait_until


# --- The healthy cluster ---------------------------------------------------------------


def test_both_replicas_stream_over_tls_pg2_synchronously(hosts):
    assert sql(hosts["pg1"], "SELECT pg_is_in_recovery()") == "f"
    assert wait_until(lambda: replication_rows(hosts["pg1"]) == {
        "pg2": ("streaming", "sync", "t"),
        "pg3": ("streaming", "async", "t"),
    }, timeout=60), replication_rows(hosts["pg1"])
    # Patroni's synchronous mode names the one synchronous standby; pg3 is marked asynchronous (nosync)
    assert sql(hosts["pg1"], "SHOW synchronous_standby_names") == "pg2"
    assert sql(hosts["pg1"], "SHOW synchronous_commit") == "on"


def test_each_replica_streams_through_its_own_slot(hosts):
    slots = sql(hosts["pg1"], "SELECT slot_name, active FROM pg_replication_slots ORDER BY 1", db="postgres")
    assert slots.splitlines() == ["pg2|t", "pg3|t"]
    for name in ("pg2", "pg3"):
        receiver = sql(hosts[name], "SELECT status, slot_name, sender_host FROM pg_stat_wal_receiver", db="postgres")
        assert receiver == "streaming|%s|%s" % (name, ADDRESSES["pg1"])


def test_replicas_are_hot_standbys_with_the_primarys_tuning(hosts):
    settings = "SELECT pg_is_in_recovery(), current_setting('hot_standby'), current_setting('shared_buffers'), " \
               "current_setting('work_mem'), current_setting('max_connections'), current_setting('data_checksums')"
    primary = sql(hosts["pg1"], settings).split("|")
    assert primary[0] == "f"
    for name in ("pg2", "pg3"):
        replica = sql(hosts[name], settings).split("|")
        assert replica[0] == "t" and replica[1] == "on", name
        assert replica[2:] == primary[2:], name


def test_a_row_committed_on_the_primary_is_read_on_both_replicas(hosts):
    marker = str(uuid.uuid4())
    sql(hosts["pg1"], "CREATE TABLE IF NOT EXISTS replication_check (id bigserial PRIMARY KEY, marker text NOT NULL)")
    sql(hosts["pg1"], "INSERT INTO replication_check (marker) VALUES ('%s')" % marker)
    for name in ("pg2", "pg3"):
        found = wait_until(lambda name=name: count(hosts[name], marker))
        assert found == 1, name


def test_writes_to_a_replica_are_refused(hosts):
    for name in ("pg2", "pg3"):
        run = hosts[name].run("runuser -u postgres -- psql -XAtq -d appdb -c %s",
                              "INSERT INTO replication_check (marker) VALUES ('from a replica')")
        assert run.rc != 0 and "read-only transaction" in run.stderr, (name, run.stderr)


def test_a_check_run_of_promote_changes_nothing(hosts, ansible_playbook):
    run, out = playbook_check(ansible_playbook, "promote.yml", {"promote_target": "pg2"})
    assert run.returncode == 0, out[-3000:]
    assert "Would hand the primary role to pg2 (planned switchover)" in out
    assert recap_changed(run.stdout) == 0, changed_tasks(run.stdout)
    assert sql(hosts["pg1"], "SELECT pg_is_in_recovery()") == "f"
    assert sql(hosts["pg2"], "SELECT pg_is_in_recovery()") == "t"


def test_another_clusters_data_directory_is_refused_then_recloned_only_when_asked(hosts, ansible_playbook):
    pg3 = hosts["pg3"]
    pg3.check_output("systemctl stop %s", UNIT)
    pg3.check_output("mv %s %s.real", DATA_DIR, DATA_DIR)
    # Someone's other cluster where pg3's data directory belongs, with a file that must survive.
    pg3.check_output("runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D %s --auth=peer -E UTF8 >/dev/null",
                     DATA_DIR)
    pg3.check_output("echo precious > %s/KEEP-ME", DATA_DIR)
    try:
        # playbooks/postgresql.yml, not the whole converge: the backups and schemas play no part
        run, out = converge(ansible_playbook, limit="pg3", playbook=POSTGRESQL)
        assert run.returncode != 0
        assert "belongs to another cluster" in out and "postgresql_replica_reclone=true" in out, out[-3000:]
        assert pg3.file(DATA_DIR + "/KEEP-ME").content_string == "precious\n"

        run, out = converge(ansible_playbook, {"postgresql_replica_reclone": True}, limit="pg3", playbook=POSTGRESQL)
        assert run.returncode == 0, out[-3000:]
        moved = pg3.check_output("ls -d %s.before-reclone-*", DATA_DIR)
        assert pg3.file(moved + "/KEEP-ME").content_string == "precious\n"
        # Patroni cloned pg1 in its place
        assert wait_until(lambda: replication_rows(hosts["pg1"]).get("pg3") == ("streaming", "async", "t"), timeout=120)
        assert sql(pg3, "SELECT count(*) > 0 FROM replication_check") == "t"
    finally:
        pg3.run("rm -rf %s.real %s.before-reclone-*", DATA_DIR, DATA_DIR)
