"""What the cluster's suites share (test_30, test_40, test_50): the three servers of the cluster,
psql through the local socket, and the runs of the scenario's converge and of the playbooks.
pg1 is the primary (zone 1), pg2 the sync standby (zone 2), pg3 the async replica (zone 3) until
the failover drill (test_50_failover_drill.py) promotes pg2.
"""

from __future__ import annotations

import os

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
ADDRESSES = {"pg1": "10.213.50.11", "pg2": "10.213.50.12", "pg3": "10.213.50.13"}
DATA_DIR = "/var/lib/postgresql/15/main"
UNIT = "patroni@15-main"
PG_UNIT = "postgresql@15-main"
POSTGRESQL = "../../playbooks/postgresql.yml"  # relative to the scenario's directory


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


def converge(ansible_playbook, extra_vars: dict | None = None, playbook: str = "converge.yml", **kwargs):
    run = ansible_playbook(playbook, extra_vars, **kwargs)
    return run, run.stdout + run.stderr


def playbook(ansible_playbook, name: str, extra_vars: dict):
    """Run playbooks/<name>; its output with YAML's line folding undone, for substring checks."""
    run = ansible_playbook("../../playbooks/" + name, extra_vars)
    return run, " ".join((run.stdout + run.stderr).split())


def playbook_check(ansible_playbook, name: str, extra_vars: dict):
    run = ansible_playbook("../../playbooks/" + name, extra_vars, check=True)
    return run, " ".join((run.stdout + run.stderr).split())


def count(host, marker: str) -> int:
    """How many rows of replication_check (test_30_replication.py) carry `marker`."""
    return int(sql(host, "SELECT count(*) FROM replication_check WHERE marker = '%s'" % marker))
