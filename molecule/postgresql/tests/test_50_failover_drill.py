"""The failover drill of seeds 000/003, run last on the converged cluster: the primary stops, the
sync standby is promoted with playbooks/promote.yml, no committed row is lost, the async replica
follows the new primary, and playbooks/rejoin.yml brings the old primary back as a replica.
After it, pg2 is the primary.
"""

from __future__ import annotations

from cluster import UNIT, converge, hosts, playbook, replication_rows, sql  # noqa: F401 (hosts: a fixture)  # pylint: disable=unused-import
from conftest import changed_tasks, recap_changed, wait_until

# The timeline pg1 was on before the drill (the backup suite's restore has already moved it):
# the promotion starts the next one.
BEFORE = {}


# --- The drill: the primary fails -----------------------------------------------------------


def test_drill_promote_the_sync_standby_when_the_primary_stops(hosts, ansible_playbook):
    pg1, pg2, pg3 = hosts["pg1"], hosts["pg2"], hosts["pg3"]
    # Separate commits, each acknowledged to the client before the next one.
    sql(pg1, "CREATE TABLE drill (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
    for batch in range(20):
        sql(pg1, "INSERT INTO drill (id) SELECT %d * 100 + g FROM generate_series(1, 100) g" % batch)
    committed = int(sql(pg1, "SELECT count(*) FROM drill"))
    BEFORE["timeline"] = int(sql(pg1, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)", db="postgres"), 16)
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
    start = pg1.run("systemctl start %s", UNIT)
    assert start.rc != 0 and f"Unit {UNIT}.service is masked" in start.stderr, start.stderr

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
    assert "pg2: PRIMARY, timeline %d" % (BEFORE["timeline"] + 1) in out
    for replica in ("pg1", "pg3"):
        line = next(line for line in out.splitlines() if line.strip().strip('",').startswith(replica + " "))
        assert "streaming" in line and "TLSv1.3" in line, line
    assert "STANDBY" in out and "WAL receiver: streaming from pg2" in out
