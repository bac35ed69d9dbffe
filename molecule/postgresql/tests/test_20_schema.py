"""pg_schema: migrations, triggers, privileges and partitions, checked the way a DBA would, on
pg1, the primary of the cluster that playbooks/postgresql.yml converged (the users connect over
TCP from the primary itself, listed in pg_hba.conf for 127.0.0.1/32).

Tests run in file order: the partition tests run the maintenance service, and the migration
tests last, because they re-run the playbook with extra migration files.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import uuid
from pathlib import Path

import pytest

from conftest import recap_changed

testinfra_hosts = ["pg1"]

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
SHIPPED = PROJECT / "roles/pg_schema/files/migrations/tripgen_ai"
SCENARIO = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).resolve().parents[1]))
PLAYBOOK = str(PROJECT / "playbooks/schema.yml")
PASSWORDS = {
    "ai_service": "molecule-only-ai-service",
    "ai_readonly": "molecule-only-ai-readonly",
    "ai_admin": "molecule-only-ai-admin",
}


def sql(host, query: str, db: str = "tripgen_ai", user: str | None = None):
    """Run one query; as the superuser over the socket, or as `user` over TCP with its password."""
    if user is None:
        cmd = f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {db} -c {shlex.quote(query)}"
    else:
        cmd = (f"PGPASSWORD={shlex.quote(PASSWORDS[user])} psql -XAtq -v ON_ERROR_STOP=1 "
               f"-h 127.0.0.1 -U {user} -d {db} -c {shlex.quote(query)}")
    return host.run(cmd)


def value(host, query: str, db: str = "tripgen_ai", user: str | None = None) -> str:
    result = sql(host, query, db, user)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def applied_versions(host) -> list[int]:
    out = value(host, "SELECT version FROM onprem_migrations.schema_migrations ORDER BY version")
    return [int(v) for v in out.split()]


# --- migrations as converged ----------------------------------------------------------------


def test_shipped_migrations_recorded_with_their_checksums(host):
    rows = value(host, "SELECT filename, checksum, transactional, duration_ms >= 0 "
                       "FROM onprem_migrations.schema_migrations ORDER BY version")
    recorded = {r.split("|")[0]: r.split("|")[1:] for r in rows.splitlines()}
    files = sorted(SHIPPED.glob("*.sql")) + sorted((SHIPPED / "samples").glob("*.sql"))
    for f in files:
        assert f.name in recorded, f"{f.name} not applied"
        checksum, transactional, duration_ok = recorded[f.name]
        assert checksum == hashlib.sha256(f.read_bytes()).hexdigest()
        assert duration_ok == "t"
        assert transactional == ("f" if f.read_text().startswith("-- onprem:non-transactional") else "t")


def test_schema_objects_exist(host):
    tables = value(host, "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class c "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE nspname = 'ai_schema' AND relkind IN ('r', 'p') AND NOT relispartition")
    assert tables == "ai_generation_logs,ai_jobs,ai_recommendations,ai_schedules"
    gin = value(host, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'ai_schema' AND indexdef LIKE '%USING gin%'")
    assert int(gin) == 3
    # the non-transactional migration built a valid index
    assert value(host, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ai_schema.idx_ai_jobs_completed_at'::regclass") == "t"
    assert value(host, "SELECT count(*) FROM ai_schema.ai_recommendations") == "2"  # sample_data: true


# --- triggers ----------------------------------------------------------------------------


def test_schedule_expires_seven_days_after_generation(host):
    out = value(host, "INSERT INTO ai_schema.ai_schedules (trip_id, status, generated_at) "
                      "VALUES ('trip-molecule', 'COMPLETED', '2025-03-01 10:00+00') "
                      "RETURNING expired_at - generated_at, length(request_id)", user="ai_service")
    assert out.splitlines()[0] == "7 days|36"


def test_recommendation_expires_after_24_hours(host):
    out = value(host, "INSERT INTO ai_schema.ai_recommendations (place_id, profile_hash, recommendation_data) "
                      "VALUES ('LOC-MOLECULE', 'hash', '{}') RETURNING expired_at - created_at", user="ai_service")
    assert out.splitlines()[0] == "1 day"


def test_updated_at_moves_on_update(host):
    request_id = value(host, "INSERT INTO ai_schema.ai_jobs (job_type, status, payload) "
                             "VALUES ('SCHEDULE_GENERATION', 'QUEUED', '{}') RETURNING request_id",
                       user="ai_service").splitlines()[0]
    before = value(host, f"SELECT updated_at FROM ai_schema.ai_jobs WHERE request_id = '{request_id}'")
    moved = value(host, f"UPDATE ai_schema.ai_jobs SET status = 'PROCESSING' WHERE request_id = '{request_id}' "
                        f"RETURNING updated_at > '{before}'::timestamptz", user="ai_service")
    assert moved.splitlines()[0] == "t"


# --- users and privileges ------------------------------------------------------------------


@pytest.mark.parametrize("role, limit", [("ai_service", 150), ("ai_readonly", 20), ("ai_admin", 10)])
def test_users_have_connection_limits_and_no_power(host, role, limit):
    out = value(host, f"SELECT rolconnlimit, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = '{role}'",
                db="postgres")
    assert out == f"{limit}|f|f|f"


def test_readonly_user_reads_but_cannot_write(host):
    assert int(value(host, "SELECT count(*) FROM ai_schema.ai_jobs", user="ai_readonly")) >= 1
    result = sql(host, "INSERT INTO ai_schema.ai_jobs (job_type, status, payload) "
                       "VALUES ('SCHEDULE_GENERATION', 'QUEUED', '{}')", user="ai_readonly")
    assert result.rc != 0 and "permission denied" in result.stderr
    result = sql(host, "DELETE FROM ai_schema.ai_schedules", user="ai_readonly")
    assert result.rc != 0 and "permission denied" in result.stderr


@pytest.mark.parametrize("statement, refusal", [
    ("DROP TABLE ai_schema.ai_jobs", "must be owner of table ai_jobs"),
    ("ALTER TABLE ai_schema.ai_jobs ADD COLUMN molecule int", "must be owner of table ai_jobs"),
    ("TRUNCATE ai_schema.ai_schedules", "permission denied for table ai_schedules"),
    ("CREATE TABLE ai_schema.molecule_intruder (id int)", "permission denied for schema ai_schema"),
])
def test_application_user_cannot_change_the_schema(host, statement, refusal):
    result = sql(host, statement, user="ai_service")
    assert result.rc != 0
    assert refusal in result.stderr, result.stderr


def test_application_user_has_only_the_listed_privileges(host):
    result = sql(host, "DELETE FROM ai_schema.ai_jobs WHERE false", user="ai_service")
    # 0005 grants DML on every table to the service user (seed 002); the variable list adds nothing more
    assert result.rc == 0
    assert value(host, "SELECT has_table_privilege('ai_service', 'ai_schema.ai_jobs', 'TRUNCATE')") == "f"


def test_autovacuum_settings(host):
    out = value(host, "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'ai_schema.ai_jobs'::regclass")
    assert "autovacuum_vacuum_scale_factor=0.05" in out and "autovacuum_analyze_scale_factor=0.05" in out


# --- statistics: seed 004's queries run in the application's database ------------------------


@pytest.mark.parametrize("db", ["tripgen_ai", "ops_audit"])
def test_pg_stat_statements_exists_in_each_schema_database(host, db):
    # the view answers only in a database the extension was created in (here: by pg_schema,
    # which created both databases; neither is in postgresql_databases)
    assert value(host, "SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements'", db=db) \
        == "pg_stat_statements"


def test_application_user_reads_its_statements_in_its_database(host):
    marker = f"stats_probe_{uuid.uuid4().hex[:8]}"
    value(host, f"SELECT count(*) AS {marker} FROM ai_schema.ai_jobs", user="ai_service")
    # as ai_service, whose search_path is ai_schema: the view lives in public
    calls = value(host, "SELECT sum(s.calls) FROM public.pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                        f"WHERE d.datname = 'tripgen_ai' AND s.query LIKE '%AS {marker} FROM%'", user="ai_service")
    assert calls == "1"


# --- partitions ----------------------------------------------------------------------------

BOUNDS = ("SELECT {agg} FROM {schema}.show_partitions('{table}') p, "
          "{schema}.show_partition_info(p.partition_schemaname || '.' || p.partition_tablename) i")


def test_partitions_premade_six_months_ahead(host):
    covered = value(host, BOUNDS.format(agg="max(i.child_end_time) >= now() + interval '6 months'",
                                        schema="partman", table="ai_schema.ai_generation_logs"))
    assert covered == "t"
    covered = value(host, BOUNDS.format(agg="max(i.child_end_time) >= now() + interval '6 months'",
                                        schema="partman", table="audit.events"), db="ops_audit")
    assert covered == "t"


def test_maintenance_timers_are_scheduled(host):
    for unit in ("pg-schema-partman@tripgen_ai.timer", "pg-schema-partman@ops_audit.timer",
                 "pg-schema-analyze@tripgen_ai.timer", "pg-schema-reindex@tripgen_ai.timer"):
        assert host.service(unit).is_enabled
        assert host.service(unit).is_running


def test_retention_drops_monthly_partitions(host):
    run = host.run("systemctl start pg-schema-partman@tripgen_ai.service")
    assert run.rc == 0, run.stderr
    expired = value(host, BOUNDS.format(agg="count(*) FILTER (WHERE i.child_end_time < now() - interval '3 months')",
                                        schema="partman", table="ai_schema.ai_generation_logs"))
    assert expired == "0"
    # dropped, not merely detached: no leftover ai_generation_logs_p* table outside the set
    leftovers = value(host, "SELECT count(*) FROM pg_class WHERE relname LIKE 'ai_generation_logs_p%' "
                            "AND relkind = 'r' AND NOT relispartition")
    assert leftovers == "0"
    assert value(host, "SELECT count(*) >= 10 FROM partman.show_partitions('ai_schema.ai_generation_logs')") == "t"


def test_retention_detaches_quarterly_partitions(host):
    run = host.run("systemctl start pg-schema-partman@ops_audit.service")
    assert run.rc == 0, run.stderr
    expired = value(host, BOUNDS.format(agg="count(*) FILTER (WHERE i.child_end_time < now() - interval '6 months')",
                                        schema="partman", table="audit.events"), db="ops_audit")
    assert expired == "0"
    detached = value(host, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE nspname = 'audit' AND relname LIKE 'events_p%' AND relkind = 'r' AND NOT relispartition",
                     db="ops_audit")
    assert int(detached) >= 1


def test_maintenance_jobs_run(host):
    for unit in ("pg-schema-analyze@tripgen_ai.service", "pg-schema-reindex@tripgen_ai.service"):
        run = host.run(f"systemctl start {unit}")
        assert run.rc == 0, host.run(f"journalctl -u {unit} --no-pager -n 20").stdout
    assert value(host, "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                       "WHERE relid = 'ai_schema.ai_jobs'::regclass") == "t"


# --- migration lifecycle (re-runs the playbook) ----------------------------------------------


def migration_set(tmp_path: Path, name: str, extra: dict[str, str], edit: dict[str, str] | None = None) -> list[dict]:
    target = tmp_path / name
    shutil.copytree(SHIPPED, target)
    for filename, text in extra.items():
        (target / filename).write_text(text)
    for filename, text in (edit or {}).items():
        with open(target / filename, "a") as f:
            f.write(text)
    return [{"name": "tripgen_ai", "sample_data": True, "migrations_dir": str(target)},
            {"name": "ops_audit", "migrations_dir": str(SCENARIO / "migrations/ops_audit")}]


PROBE = {"0008_molecule_probe.sql": "CREATE TABLE ai_schema.molecule_probe (id int);\n"}


def test_check_mode_lists_a_new_migration_without_applying_it(host, ansible_playbook, tmp_path):
    dbs = migration_set(tmp_path, "check", PROBE)
    run = ansible_playbook(PLAYBOOK, {"pg_schema_databases": dbs}, check=True, tags="pg_schema_migrations")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "1 pending: 0008_molecule_probe.sql" in run.stdout
    assert 8 not in applied_versions(host)


def test_new_migration_is_applied_once(host, ansible_playbook, tmp_path):
    dbs = migration_set(tmp_path, "new", PROBE)
    run = ansible_playbook(PLAYBOOK, {"pg_schema_databases": dbs}, tags="pg_schema_migrations")
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap_changed(run.stdout) > 0
    assert 8 in applied_versions(host)
    assert value(host, "SELECT to_regclass('ai_schema.molecule_probe') IS NOT NULL") == "t"
    again = ansible_playbook(PLAYBOOK, {"pg_schema_databases": dbs}, tags="pg_schema_migrations")
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap_changed(again.stdout) == 0


def test_edited_migration_stops_the_run_before_anything_is_applied(host, ansible_playbook, tmp_path):
    extra = dict(PROBE, **{"0009_molecule_after_edit.sql": "CREATE TABLE ai_schema.molecule_after_edit (id int);\n"})
    dbs = migration_set(tmp_path, "edited", extra, edit={"0002_create_tables.sql": "-- edited after it was applied\n"})
    run = ansible_playbook(PLAYBOOK, {"pg_schema_databases": dbs}, tags="pg_schema_migrations")
    assert run.returncode != 0
    # ansible-core 2.19 prints task failures on stderr
    output = run.stdout + run.stderr
    assert "0002_create_tables.sql" in output
    assert "changed since they were applied" in output
    assert 9 not in applied_versions(host)
    assert value(host, "SELECT to_regclass('ai_schema.molecule_after_edit') IS NULL") == "t"
