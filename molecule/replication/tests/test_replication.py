"""What a DBA checks on a primary with a synchronous standby and an asynchronous read replica,
and the failover drill of seeds 000/003: the primary stops, the sync standby is promoted with
playbooks/promote.yml, no committed row is lost, the async replica follows the new primary,
and playbooks/rejoin.yml brings the old primary back as a replica.

pg1 is the primary (zone 1), pg2 the sync standby (zone 2), pg3 the async replica (zone 3).
The tests run in file order: the checks of the healthy cluster first, the drill last.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest
import testinfra

from conftest import changed_tasks, recap_changed, wait_until

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
ADDRESSES = {"pg1": "10.213.50.11", "pg2": "10.213.50.12", "pg3": "10.213.50.13"}
DATA_DIR = "/var/lib/postgresql/15/main"
UNIT = "postgresql@15-main"


@pytest.fixture(scope="module")
def hosts():
    return {name: testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}") for name in ADDRESSES}


def sql(host, query: str, db: str = "appdb") -> str:
    """psql as the postgres OS user through the local socket; the rows, '|'-separated."""
    return host.check_output("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s", db, query)


def replication_rows(host) -> dict:
    """application_name -> (state, sync_state, TLS) from pg_stat_replication."""
    out = sql(host, "SELECT r.application_name, r.state, r.sync_state, s.ssl FROM pg_stat_replication r "
                    "JOIN pg_stat_ssl s USING (pid) ORDER BY 1", db="postgres")
    return {row.split("|")[0]: tuple(row.split("|")[1:]) for row in out.splitlines()}


def converge(ansible_playbook, extra_vars: dict | None = None, **kwargs):
    run = ansible_playbook("converge.yml", extra_vars, **kwargs)
    return run, run.stdout + run.stderr


def playbook(ansible_playbook, name: str, extra_vars: dict):
    """Run playbooks/<name>; its output with YAML's line folding undone, for substring checks."""
    run = ansible_playbook("../../playbooks/" + name, extra_vars)
    return run, " ".join((run.stdout + run.stderr).split())


def playbook_check(ansible_playbook, name: str, extra_vars: dict):
    run = ansible_playbook("../../playbooks/" + name, extra_vars, check=True)
    return run, " ".join((run.stdout + run.stderr).split())


# --- The healthy cluster ---------------------------------------------------------------


def test_both_replicas_stream_over_tls_the_sync_one_as_quorum(hosts):
    assert sql(hosts["pg1"], "SELECT pg_is_in_recovery()") == "f"
    assert replication_rows(hosts["pg1"]) == {
        "pg2": ("streaming", "quorum", "t"),
        "pg3": ("streaming", "async", "t"),
    }
    assert sql(hosts["pg1"], "SHOW synchronous_standby_names") == 'ANY 1 ("pg2")'
    assert sql(hosts["pg1"], "SHOW synchronous_commit") == "on"


def test_each_replica_streams_through_its_own_slot(hosts):
    slots = sql(hosts["pg1"], "SELECT slot_name, active FROM pg_replication_slots ORDER BY 1", db="postgres")
    assert slots.splitlines() == ["pg2|t", "pg3|t"]
    for name in ("pg2", "pg3"):
        receiver = sql(hosts[name], "SELECT status, slot_name, sender_host FROM pg_stat_wal_receiver", db="postgres")
        assert receiver == "streaming|%s|pg1" % name


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
        found = wait_until(lambda name=name: _count(hosts[name], marker))
        assert found == 1, name


def _count(host, marker: str) -> int:
    return int(sql(host, "SELECT count(*) FROM replication_check WHERE marker = '%s'" % marker))


def test_writes_to_a_replica_are_refused(hosts):
    for name in ("pg2", "pg3"):
        run = hosts[name].run("runuser -u postgres -- psql -XAtq -d appdb -c %s",
                              "INSERT INTO replication_check (marker) VALUES ('from a replica')")
        assert run.rc != 0 and "read-only transaction" in run.stderr, (name, run.stderr)


def test_a_commit_waits_for_the_synchronous_standby(hosts):
    """RPO 0: while pg2 is down, a commit on pg1 does not return; it does once pg2 is back."""
    marker = str(uuid.uuid4())
    hosts["pg2"].check_output("systemctl stop %s", UNIT)
    try:
        run = hosts["pg1"].run("timeout 5 runuser -u postgres -- psql -XAtq -d appdb -c %s",
                               "INSERT INTO replication_check (marker) VALUES ('%s')" % marker)
        assert run.rc == 124, "the commit returned without the synchronous standby: %s" % run.stderr
    finally:
        hosts["pg2"].check_output("systemctl start %s", UNIT)
    # The waiting commit completes once pg2 streams again, and pg2 has the row.
    assert wait_until(lambda: _count(hosts["pg2"], marker), timeout=60) == 1
    assert wait_until(lambda: replication_rows(hosts["pg1"])["pg2"] == ("streaming", "quorum", "t"), timeout=60)


def test_a_lagging_replica_is_not_promoted(hosts, ansible_playbook):
    """pg3 stops receiving WAL while the primary writes more than promote_max_lag_bytes."""
    pg3 = hosts["pg3"]
    sql(pg3, "ALTER SYSTEM SET primary_conninfo = ''", db="postgres")
    sql(pg3, "SELECT pg_reload_conf()", db="postgres")
    try:
        assert wait_until(lambda: sql(pg3, "SELECT count(*) FROM pg_stat_wal_receiver", db="postgres") == "0")
        for _ in range(2):
            sql(hosts["pg1"], "INSERT INTO replication_check (marker) SELECT 'lag' FROM generate_series(1, 100)")
            sql(hosts["pg1"], "SELECT pg_switch_wal()")
        run, out = playbook(ansible_playbook, "promote.yml", {"promote_target": "pg3"})
        assert run.returncode != 0
        # behind the primary, or the sync standby that has as much WAL
        assert re.search(r"pg3 \(WAL [0-9A-F/]+\) is \d+ bytes behind pg[12], more than promote_max_lag_bytes "
                         r"\(16777216\)", out), out[-3000:]
        assert "Nothing was changed" in out and recap_changed(run.stdout) == 0
        assert sql(hosts["pg1"], "SELECT pg_is_in_recovery()") == "f"
        assert sql(pg3, "SELECT pg_is_in_recovery()") == "t"
    finally:
        sql(pg3, "ALTER SYSTEM RESET primary_conninfo", db="postgres")
        sql(pg3, "SELECT pg_reload_conf()", db="postgres")
    assert wait_until(lambda: replication_rows(hosts["pg1"])["pg3"] == ("streaming", "async", "t"), timeout=60)


def test_the_primary_itself_is_not_promoted(ansible_playbook):
    run, out = playbook(ansible_playbook, "promote.yml", {"promote_target": "pg1"})
    assert run.returncode != 0
    assert "pg1 is already the primary of the inventory" in out
    assert recap_changed(run.stdout) == 0


def test_a_check_run_of_promote_changes_nothing(hosts, ansible_playbook):
    run, out = playbook_check(ansible_playbook, "promote.yml", {"promote_target": "pg2"})
    assert run.returncode == 0, out[-3000:]
    assert "Check mode: pg2 can be promoted. A real run fences pg1 (stop, mask), promotes pg2 and re-points pg3" in out
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
        run, out = converge(ansible_playbook, limit="pg3")
        assert run.returncode != 0
        assert "belongs to another cluster" in out and "postgresql_replica_reclone=true" in out, out[-3000:]
        assert pg3.file(DATA_DIR + "/KEEP-ME").content_string == "precious\n"

        run, out = converge(ansible_playbook, {"postgresql_replica_reclone": True}, limit="pg3")
        assert run.returncode == 0, out[-3000:]
        moved = pg3.check_output("ls -d %s.before-reclone-*", DATA_DIR)
        assert pg3.file(moved + "/KEEP-ME").content_string == "precious\n"
        assert wait_until(lambda: replication_rows(hosts["pg1"])["pg3"] == ("streaming", "async", "t"), timeout=60)
        assert sql(pg3, "SELECT count(*) > 0 FROM replication_check") == "t"
    finally:
        pg3.run("rm -rf %s.real %s.before-reclone-*", DATA_DIR, DATA_DIR)


# --- The drill: the primary fails -----------------------------------------------------------


def test_drill_promote_the_sync_standby_when_the_primary_stops(hosts, ansible_playbook):
    pg1, pg2, pg3 = hosts["pg1"], hosts["pg2"], hosts["pg3"]
    # Separate commits, each acknowledged to the client before the next one.
    sql(pg1, "CREATE TABLE drill (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
    for batch in range(20):
        sql(pg1, "INSERT INTO drill (id) SELECT %d * 100 + g FROM generate_series(1, 100) g" % batch)
    committed = int(sql(pg1, "SELECT count(*) FROM drill"))
    assert committed == 2000

    pg1.check_output("systemctl stop %s", UNIT)
    run, out = playbook(ansible_playbook, "promote.yml", {"promote_target": "pg2"})
    assert run.returncode == 0, out[-4000:]
    assert "Promoted pg2 to primary" in out and "it held all of the old primary's WAL" in out
    assert "Fenced the old primary pg1" in out and "Re-pointed pg3 at pg2" in out
    assert "NOT streaming" not in out

    # pg2 takes writes, and has every row committed on pg1: none lost.
    assert sql(pg2, "SELECT pg_is_in_recovery()") == "f"
    assert int(sql(pg2, "SELECT count(*) FROM drill")) == committed
    sql(pg2, "INSERT INTO drill (id) VALUES (100000)")

    # The old primary is fenced: masked, it does not start.
    assert pg1.run("systemctl is-enabled %s", UNIT).stdout.strip() == "masked"
    assert pg1.run("systemctl start %s", UNIT).rc != 0

    # pg3 follows pg2 on the new timeline.
    assert wait_until(lambda: replication_rows(pg2).get("pg3") == ("streaming", "async", "t"), timeout=60)
    assert wait_until(lambda: int(sql(pg3, "SELECT count(*) FROM drill WHERE id = 100000"))) == 1
    assert int(sql(pg3, "SELECT count(*) FROM drill")) == committed + 1


def test_drill_rejoin_the_old_primary_as_a_replica(hosts, ansible_playbook):
    pg1, pg2 = hosts["pg1"], hosts["pg2"]
    run, out = playbook(ansible_playbook, "rejoin.yml", {"rejoin_host": "pg1", "postgresql_primary": "pg2"})
    assert run.returncode == 0, out[-4000:]
    assert "pg1 streams from pg2 again" in out

    assert sql(pg1, "SELECT pg_is_in_recovery()") == "t"
    assert sql(pg1, "SELECT status, sender_host FROM pg_stat_wal_receiver", db="postgres") == "streaming|pg2"
    sql(pg2, "INSERT INTO drill (id) VALUES (100001)")
    assert wait_until(lambda: int(sql(pg1, "SELECT count(*) FROM drill WHERE id = 100001"))) == 1
    assert int(sql(pg1, "SELECT count(*) FROM drill")) == 2002


def test_drill_after_the_switch_a_converge_changes_nothing(hosts, ansible_playbook):
    run, out = converge(ansible_playbook, {"postgresql_primary": "pg2"})
    assert run.returncode == 0, out[-3000:]
    assert recap_changed(run.stdout) == 0, changed_tasks(run.stdout)
    # Both replicas of the new primary stream; synchronous_standby_names lists no sync replica
    # of pg2 (pg2 was the only one marked sync), so writes never wait for an absent standby.
    rows = replication_rows(hosts["pg2"])
    assert {name: row[0] for name, row in rows.items()} == {"pg1": "streaming", "pg3": "streaming"}


def test_replication_status_reports_state_and_lag(ansible_playbook):
    run = ansible_playbook("../../playbooks/replication_status.yml", {"postgresql_primary": "pg2"})
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "pg2: PRIMARY, timeline 2" in out
    for replica in ("pg1", "pg3"):
        line = next(line for line in out.splitlines() if line.strip().strip('",').startswith(replica + " "))
        assert "streaming" in line and "TLSv1.3" in line, line
    assert "STANDBY" in out and "WAL receiver: streaming from pg2" in out
