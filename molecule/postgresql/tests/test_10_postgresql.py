"""What a DBA would check on the converged PostgreSQL server, with real queries.

pg1 is the cluster's primary; these checks run first, before any drill moves the primary.
pg-client is listed in pg_hba.conf (its /32), pg-outsider is on the same network but not listed.
Client checks run psql on those containers against pg1 over the network, the way an
application would. The role's own objects (postgresql_users, _databases, _schemas,
_privileges) are app_*/appdb; pg_schema's seed schema has its own suite (test_20_schema.py).
"""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from cluster import POSTGRESQL
from conftest import inventory_host, recap_changed, wait_until

CA_ON_CLIENT = "/etc/ssl/certs/onprem-postgresql-ca.crt"
LOG_DIR = "/var/log/postgresql/15-main"  # the role's postgresql_log_directory for 15/main
RELOAD_HANDLER = "RUNNING HANDLER [onprem.datastores.postgresql : Reload PostgreSQL (Patroni)]"
RESTART_HANDLER = "RUNNING HANDLER [onprem.datastores.postgresql : Restart PostgreSQL (Patroni)]"
PREFLIGHT = "../../playbooks/preflight.yml"  # relative to the scenario's directory


@pytest.fixture(scope="module")
def server():
    return inventory_host("pg1")


@pytest.fixture(scope="module")
def client():
    return inventory_host("pg-client")


@pytest.fixture(scope="module")
def outsider():
    return inventory_host("pg-outsider")


@pytest.fixture(scope="module")
def server_vars(server):
    return server.ansible.get_variables()


@pytest.fixture(scope="module")
def passwords(server_vars):
    return {user["name"]: user.get("password") for user in server_vars["postgresql_users"]}


def sql(server, query: str, db: str = "postgres") -> str:
    """Run a query as the superuser through the local socket; return its unaligned output."""
    result = server.run("sudo -u postgres psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s", db, query)
    assert result.rc == 0, result.stderr
    return result.stdout.rstrip("\n")


def remote(host, user: str, password: str, query: str, db: str = "appdb", sslmode: str = "verify-full",
           extra: str = ""):
    """Connect to pg1 over the network from `host`; return the CommandResult."""
    conninfo = (f"host=pg1 port=5432 dbname={db} user={user} sslmode={sslmode} "
                f"sslrootcert={CA_ON_CLIENT} connect_timeout=10 {extra}")
    return host.run("PGPASSWORD=%s psql %s -XAtq -v ON_ERROR_STOP=1 -c %s", password, conninfo, query)


def start_time(server) -> str:
    return sql(server, "SELECT pg_postmaster_start_time()")


def changed_tasks(output: str) -> list[str]:
    """The TASK/HANDLER headers of an ansible-playbook run that reported changed."""
    changed, current = [], ""
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            current = line.rstrip("* ")
        elif line.startswith("changed:"):
            changed.append(current)
    return changed


# --- cluster and settings -------------------------------------------------------------

# PGTune's output (le0pard/pgtune: PostgreSQL 15, Linux, "web", SSD), worked out by hand for the
# plan this scenario pins (molecule.yml: postgresql_memory_mb 1024, postgresql_cpus 4, workload web;
# 200 connections, web's and the role's default). Not computed by pg_tune, the filter under test.
#   RAM                   1024 MB = 1048576 kB
#   shared_buffers        RAM / 4            = 262144 kB = 256MB
#   effective_cache_size  RAM * 3 / 4        = 786432 kB = 768MB
#   maintenance_work_mem  RAM / 16           =  65536 kB = 64MB   (cap 8GB)
#   wal_buffers           3 % of shared_buffers = floor(7864.32) = 7864kB (not within 14-16MB, so
#                         not rounded up to 16MB; 983 pages of 8 kB, shown as 7864kB)
#   max_worker_processes  4 CPUs (>= 4): the CPU count = 4; max_parallel_workers 4
#   ..._per_gather        ceil(4 / 2) = 2 (web: at most 4); max_parallel_maintenance_workers ceil(4 / 2) = 2
#   work_mem              (RAM - shared_buffers) / ((connections + max_worker_processes) * 3)
#                         = 786432 / ((200 + 4) * 3) = 786432 / 612 = 1285 kB, under the 4MB floor -> 4MB
#   huge_pages            off: shared_buffers is under 2GB
#   web / SSD / 15        checkpoint_completion_target 0.9, default_statistics_target 100,
#                         random_page_cost 1.1, effective_io_concurrency 200, jit off,
#                         wal_compression lz4, min_wal_size 1GB, max_wal_size 4GB
PGTUNE_1GB_4CPU_WEB_SSD = {
    "max_connections": "200",
    "shared_buffers": "256MB",
    "effective_cache_size": "768MB",
    "maintenance_work_mem": "64MB",
    "checkpoint_completion_target": "0.9",
    "wal_buffers": "7864kB",
    "default_statistics_target": "100",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "work_mem": "4MB",
    "huge_pages": "off",
    "jit": "off",
    "wal_compression": "lz4",
    "min_wal_size": "1GB",
    "max_wal_size": "4GB",
    "max_worker_processes": "4",
    "max_parallel_workers_per_gather": "2",
    "max_parallel_workers": "4",
    "max_parallel_maintenance_workers": "2",
}


def test_every_tuned_setting_is_what_pgtune_prints_for_the_plan(server, server_vars):
    # the plan the numbers above were worked out for
    assert (server_vars["postgresql_memory_mb"], server_vars["postgresql_cpus"],
            server_vars["postgresql_workload"]) == (1024, 4, "web")
    names = ",".join(f"'{name}'" for name in PGTUNE_1GB_4CPU_WEB_SSD)
    rows = sql(server, f"SELECT name || '=' || current_setting(name) FROM unnest(ARRAY[{names}]) AS name")
    shown = dict(line.split("=", 1) for line in rows.splitlines())
    assert shown == PGTUNE_1GB_4CPU_WEB_SSD


@pytest.mark.parametrize("setting, value", [
    ("data_checksums", "on"),
    ("server_encoding", "UTF8"),
    ("lc_collate", "en_US.UTF-8"),
    ("password_encryption", "scram-sha-256"),
    ("ssl", "on"),
    ("ssl_min_protocol_version", "TLSv1.2"),
    ("listen_addresses", "*"),
    ("shared_preload_libraries", "pg_stat_statements,pgaudit"),
    ("pg_stat_statements.track", "all"),
    ("log_min_duration_statement", "1s"),
    ("log_statement", "ddl"),
    ("log_line_prefix", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h "),
    ("log_connections", "on"),
    ("log_disconnections", "on"),
    ("log_lock_waits", "on"),
    ("log_checkpoints", "on"),
    ("logging_collector", "on"),
    ("log_rotation_age", "1d"),
    ("log_rotation_size", "100MB"),
    ("idle_in_transaction_session_timeout", "30min"),
])
def test_setting(server, setting, value):
    assert sql(server, f"SHOW {setting}") == value


def test_each_setting_has_one_source(server):
    """Patroni runs this cluster: PGTune's values are Patroni's parameters (the postgresql.conf it
    writes), the values every member shares come from etcd (Patroni passes them on the command
    line), TLS and logging stay in the role's conf.d file. None of them is set in two places."""
    rows = sql(server, "SELECT name, source, coalesce(sourcefile, '-') FROM pg_settings WHERE name IN "
                       "('shared_buffers', 'ssl_cert_file', 'log_line_prefix', 'max_connections') ORDER BY 1")
    assert rows.splitlines() == [
        "log_line_prefix|configuration file|/etc/postgresql/15/main/conf.d/10-onprem-datastores.conf",
        "max_connections|command line|-",
        "shared_buffers|configuration file|/etc/postgresql/15/main/postgresql.conf",
        "ssl_cert_file|configuration file|/etc/postgresql/15/main/conf.d/10-onprem-datastores.conf",
    ]
    twice = sql(server, "SELECT coalesce(string_agg(name, ','), '') FROM "
                        "(SELECT name FROM pg_file_settings GROUP BY name HAVING count(*) > 1) d")
    assert twice == ""
    assert sql(server, "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL") == "0"


def test_server_logs_what_the_seeds_ask_for(server):
    log_dir = sql(server, "SHOW log_directory")
    newest = server.run("ls -1t %s", log_dir).stdout.split()[0]
    line = server.run("grep -m1 'connection authorized' %s/%s", log_dir, newest).stdout
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \[\d+\]: \[\d+-1\] user=\S*,db=\S*,app=\S*,client=\S+ ", line)


# --- pg_stat_statements -----------------------------------------------------------------

def test_pg_stat_statements_records_a_query(server, client, passwords):
    marker = f"molecule_probe_{uuid.uuid4().hex[:8]}"
    result = remote(client, "app_service", passwords["app_service"], f"SELECT 42 AS {marker}")
    assert result.rc == 0, result.stderr
    calls = sql(server, "SELECT sum(s.calls) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                        f"WHERE r.rolname = 'app_service' AND s.query LIKE '%{marker}%'", db="appdb")
    assert calls == "1"


# --- network access -----------------------------------------------------------------------

def _secrets(server_vars) -> dict[str, str]:
    """Every password the inventory gives the PostgreSQL roles, by where it comes from."""
    found = {"postgresql_users[%s]" % u["name"]: u["password"] for u in server_vars["postgresql_users"] if u.get("password")}
    found.update({"pg_schema_users[%s]" % u["name"]: u["password"]
                  for u in server_vars.get("pg_schema_users", []) if u.get("password")})
    for name in ("postgresql_replication_password", "postgresql_rewind_password", "postgresql_patroni_rest_password",
                 "exporters_postgres_password"):
        if server_vars.get(name):
            found[name] = server_vars[name]
    return found


def test_no_password_in_the_log_or_pg_stat_statements(server, server_vars):
    """Role DDL carries SCRAM verifiers: the log (log_statement = ddl) records the statements that
    created the roles, but neither it nor pg_stat_statements (read by pg_monitor) holds a password."""
    secrets = _secrets(server_vars)
    assert len(secrets) >= 8, sorted(secrets)
    log = server.run("sudo sh -c 'cat %s/*'", LOG_DIR)
    assert log.rc == 0, log.stderr
    # the statements are there (the check below looks where they are), with a verifier
    created = re.findall(r"(?:CREATE|ALTER) (?:USER|ROLE) \S+ .*PASSWORD '(\S+?)'", log.stdout)
    assert len(created) >= 5, log.stdout[-2000:]
    assert all(v.startswith("SCRAM-SHA-256$4096:") for v in created), created
    statements = sql(server, "SELECT string_agg(query, E'\\n') FROM pg_stat_statements", db="appdb")
    assert "SELECT" in statements  # the view answers and holds queries
    for where, secret in secrets.items():
        for text in (secret, secret.replace("\\", "\\\\")):
            assert text not in log.stdout, "%s is in the PostgreSQL log" % where
            assert text not in statements, "%s is in pg_stat_statements" % where


def test_pgaudit_records_ddl_and_grants_but_not_reads(server):
    """Seed 003's audit log: pgaudit (postgresql_pgaudit_log [ddl, role], the scenario's default)
    writes an AUDIT line with the object's name for a CREATE TABLE and a GRANT, none for a SELECT."""
    assert sql(server, "SHOW pgaudit.log") == "ddl,role"
    table = "audit_probe_" + uuid.uuid4().hex[:8]
    sql(server, f"CREATE TABLE public.{table} (id int); GRANT SELECT ON public.{table} TO app_reader; "
                f"SELECT count(*) FROM public.{table}; DROP TABLE public.{table}", db="appdb")

    def audit_lines():
        found = server.run("sudo sh -c 'cat %s/*' | grep -F %s | grep -F AUDIT:", LOG_DIR, table)
        return found.stdout.splitlines()

    assert wait_until(lambda: len(audit_lines()) >= 3, 10), audit_lines()
    lines = audit_lines()
    # AUDIT: SESSION,<statement>,<substatement>,<class>,<command>,<object type>,<object name>,<statement>
    assert any(re.search(rf"AUDIT: SESSION,\d+,\d+,DDL,CREATE TABLE,TABLE,public\.{table},", line) for line in lines), lines
    assert any(re.search(r"AUDIT: SESSION,\d+,\d+,ROLE,GRANT,", line) for line in lines), lines
    assert any(re.search(r"AUDIT: SESSION,\d+,\d+,DDL,DROP TABLE,", line) for line in lines), lines
    assert not [line for line in lines if ",READ,SELECT," in line], lines


# OpenSSL's own floor lowered (SECLEVEL=0 allows TLS 1.0/1.1 and their SHA-1 signatures), so that
# the client really offers TLS 1.1 and only the server can refuse it; without it Debian 12's
# OpenSSL refuses TLS 1.1 itself and the check passes whatever the server allows.
PG_S_CLIENT = ("echo | timeout 10 openssl s_client -starttls postgres -connect pg1:5432 -CAfile %s"
               " -cipher DEFAULT:@SECLEVEL=0 %s")


def test_tls_1_1_is_refused_by_the_server_and_1_2_accepted(server, client):
    old = client.run(PG_S_CLIENT % (CA_ON_CLIENT, "-tls1_1"))
    assert old.rc == 1 and "Cipher is (NONE)" in old.stdout, old.stdout
    # the server's alert 70 (protocol_version), not the client's "no protocols available"
    assert "tlsv1 alert protocol version" in old.stderr and "SSL alert number 70" in old.stderr, old.stderr
    assert wait_until(lambda: server.run(
        "sudo sh -c 'cat %s/*' | grep -c 'could not accept SSL connection: unsupported protocol'", LOG_DIR
    ).stdout.strip() not in ("", "0"), 10)
    new = client.run(PG_S_CLIENT % (CA_ON_CLIENT, "-tls1_2"))
    assert "New, TLSv1.2, Cipher is " in new.stdout and "Verify return code: 0 (ok)" in new.stdout, new.stdout + new.stderr


def test_listed_client_connects_with_tls_and_scram(client, passwords):
    # channel_binding=require only succeeds with SCRAM-SHA-256-PLUS, i.e. scram over TLS
    result = remote(client, "app_service", passwords["app_service"],
                    "SELECT ssl || ' ' || version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    extra="channel_binding=require")
    assert result.rc == 0, result.stderr
    assert result.stdout.split() in (["true", "TLSv1.2"], ["true", "TLSv1.3"])


def test_passwords_are_stored_as_scram(server):
    assert sql(server, "SELECT count(*) FROM pg_authid WHERE rolname IN ('app_service', 'app_reader') "
                       "AND rolpassword LIKE 'SCRAM-SHA-256$%'") == "2"


def test_connection_without_tls_is_refused(client, passwords):
    result = remote(client, "app_service", passwords["app_service"], "SELECT 1", sslmode="disable")
    assert result.rc != 0
    assert 'pg_hba.conf rejects connection for host "10.213.50.21"' in result.stderr
    assert "no encryption" in result.stderr


def test_unlisted_network_is_refused(outsider, passwords):
    result = remote(outsider, "app_service", passwords["app_service"], "SELECT 1", sslmode="require")
    assert result.rc != 0
    assert 'pg_hba.conf rejects connection for host "10.213.50.22"' in result.stderr


def test_wrong_password_is_refused(client):
    result = remote(client, "app_service", "not-the-password", "SELECT 1")
    assert result.rc != 0
    assert 'password authentication failed for user "app_service"' in result.stderr


def test_unlisted_database_is_refused(client, passwords):
    result = remote(client, "app_service", passwords["app_service"], "SELECT 1", db="postgres")
    assert result.rc != 0
    assert "pg_hba.conf rejects connection" in result.stderr


def test_superuser_has_no_network_access(client):
    result = remote(client, "postgres", "anything", "SELECT 1", db="postgres")
    assert result.rc != 0
    assert "pg_hba.conf rejects connection" in result.stderr


# --- objects --------------------------------------------------------------------------------

def test_database_as_declared(server):
    assert sql(server, "SELECT pg_get_userbyid(datdba) || ' ' || pg_encoding_to_char(encoding) || ' ' || "
                       "datcollate || ' ' || datctype FROM pg_database WHERE datname = 'appdb'") \
        == "app_service UTF8 en_US.UTF-8 en_US.UTF-8"


def test_roles_as_declared(server):
    rows = sql(server, "SELECT rolname, rolcanlogin, rolconnlimit, coalesce(rolvaliduntil::date::text, 'infinity'), "
                       "coalesce(array_to_string(rolconfig, ';'), '') FROM pg_roles "
                       "WHERE rolname IN ('app_service', 'app_reader', 'app_readonly') ORDER BY rolname")
    assert rows.splitlines() == [
        "app_reader|t|5|2099-12-31|",
        "app_readonly|f|-1|infinity|",
        "app_service|t|50|infinity|search_path=app_schema",
    ]
    assert sql(server, "SELECT pg_has_role('app_reader', 'app_readonly', 'MEMBER')") == "t"


def test_schema_and_extensions_as_declared(server):
    assert sql(server, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'app_schema'",
               db="appdb") == "app_service"
    extensions = sql(server, "SELECT extname FROM pg_extension ORDER BY 1", db="appdb").split()
    for name in ["pg_stat_statements", "pg_trgm", "btree_gin", "btree_gist", "uuid-ossp", "pgcrypto"]:
        assert name in extensions
    assert "pg_stat_statements" in sql(server, "SELECT extname FROM pg_extension").split()


def test_privileges_as_declared(client, passwords):
    owner = ("app_service", passwords["app_service"])
    reader = ("app_reader", passwords["app_reader"])
    # the owner creates a table; default privileges give app_readonly (so app_reader) SELECT on it
    result = remote(client, *owner, "CREATE TABLE IF NOT EXISTS app_schema.privilege_probe (id int); "
                                    "TRUNCATE app_schema.privilege_probe; "
                                    "INSERT INTO app_schema.privilege_probe VALUES (7)")
    assert result.rc == 0, result.stderr
    result = remote(client, *reader, "SELECT id FROM app_schema.privilege_probe")
    assert (result.rc, result.stdout.strip()) == (0, "7"), result.stderr
    # ...and nothing it was not granted
    result = remote(client, *reader, "INSERT INTO app_schema.privilege_probe VALUES (8)")
    assert result.rc != 0 and "permission denied for table privilege_probe" in result.stderr
    result = remote(client, *reader, "CREATE TABLE app_schema.not_mine (id int)")
    assert result.rc != 0 and "permission denied for schema app_schema" in result.stderr
    result = remote(client, *reader, "CREATE TABLE public.not_mine (id int)")
    assert result.rc != 0 and "permission denied for schema public" in result.stderr


# --- what a run does ------------------------------------------------------------------------

def test_bad_input_fails_before_anything_changes(ansible_playbook, server):
    before = server.file("/etc/postgresql/15/main/conf.d/10-onprem-datastores.conf").md5sum
    # Values the role's checks refuse from the inventory alone: asked through the inventory
    # preflight that site.yml runs first (playbooks/preflight.yml, the PostgreSQL part), which
    # includes the role's own validate step, the one a postgresql.yml run starts with too.
    preflight = [
        ({"postgresql_workload": "bogus"}, "postgresql_workload"),
        ({"postgresql_memory_mb": 999999}, "postgresql_memory_mb"),
        ({"postgresql_hba_entries": [{"databases": ["all"], "users": ["all"], "addresses": ["10.0.0.300/24"]}]},
         "postgresql_hba_entries"),
        ({"postgresql_users": [{"name": "nopassword"}]}, "postgresql_users[nopassword].password"),
        ({"postgresql_pgaudit_log": ["ddl", "everything"]},
         "postgresql_pgaudit_log must be one or more of: read, write, function, role, ddl, misc, misc_set, all"),
    ]
    # Values only the installed PostgreSQL knows to refuse (asked with postgres -C before the file
    # is written). PostgreSQL names every value it refuses in one pass (an unknown name stops it
    # before the values). Only the steps up to the configuration's (its tag; validate always
    # runs), as the rest has run unchanged already.
    configure = [
        ({"postgresql_parameters": {"shared_bufers": "1GB"}}, ['unrecognized configuration parameter "shared_bufers"']),
        ({"postgresql_parameters": {"work_mem": "lots", "effective_io_concurrency": 5000}},
         ['invalid value for parameter "work_mem": "lots"',
          '5000 is outside the valid range for parameter "effective_io_concurrency" (0 .. 1000)']),
        # A library that is not installed would stop the server at its next restart.
        ({"postgresql_shared_preload_libraries": ["pg_stat_statements", "pg_no_such_library"]},
         ["names pg_no_such_library, not found in /usr/lib/postgresql/15/lib"]),
    ]
    # A bad port (the one that once took a primary down) through the whole partial run postgresql.yml.
    whole = [({"postgresql_port": 70000}, ["postgresql_port must be a TCP port from 1 to 65535; got 70000"])]
    # The long runs first, the quick preflights in the remaining worker.
    cases = ([("converge.yml", None, case) for case in whole]
             + [("converge.yml", "postgresql_configure", case) for case in configure]
             + [(PREFLIGHT, "postgresql", (extra_vars, [named])) for extra_vars, named in preflight])
    started = start_time(server)
    # Two cores: three runs at a time keep the machine busy without thrashing it.
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = list(pool.map(lambda c: ansible_playbook(c[0], c[2][0], limit="pg1", tags=c[1]), cases))
    for (playbook, _tags, (extra_vars, reasons)), run in zip(cases, runs):
        assert run.returncode != 0, f"{playbook}: {extra_vars} was accepted"
        for reason in reasons:
            assert reason in re.sub(r"\s+", " ", run.stdout + run.stderr), run.stdout[-3000:]
        assert recap_changed(run.stdout) == 0, changed_tasks(run.stdout)
    assert server.file("/etc/postgresql/15/main/conf.d/10-onprem-datastores.conf").md5sum == before
    assert start_time(server) == started  # never restarted to find out


def test_reload_for_reloadable_settings_restart_only_when_pending(ansible_playbook, server, monkeypatch):
    """Three runs of playbooks/postgresql.yml on the primary, limited to the configuration and
    service steps (the rest has its own checks):
    1. a reloadable setting changed: a reload, no restart;
    2. restarts forbidden, two restart-only settings pending: shared_buffers changed in the files,
       and max_files_per_process, set with ALTER SYSTEM, started with, then reset (what a restore
       leaves: pg_file_settings shows it with no name, as 'cannot be changed without restarting').
       With them, the reloadable setting changed again: it is reloaded and not named as waiting,
       the two others are named as waiting for a restart, and nothing restarts.
       (That second case used to fail every run as a refused configuration, 'None'.)
    3. restarts allowed, the inventory's values: exactly one restart, after which both settings
       have the inventory's values."""
    monkeypatch.setenv("ANSIBLE_SKIP_TAGS", "postgresql_tls")
    tags = "postgresql_configure,postgresql_service"
    reloadable = {"postgresql_log_min_duration_statement": 750}

    def run_playbook(extra_vars=None):
        run = ansible_playbook(POSTGRESQL, extra_vars, limit="pg1", tags=tags)
        assert run.returncode == 0, run.stdout[-3000:]
        return run

    try:
        started = start_time(server)
        run = run_playbook(reloadable)
        assert sql(server, "SHOW log_min_duration_statement") == "750ms"
        assert RELOAD_HANDLER in run.stdout and RESTART_HANDLER not in run.stdout
        assert start_time(server) == started

        sql(server, "ALTER SYSTEM SET max_files_per_process = 1100")
        # Patroni restarts the server (restarting the patroni unit would hand over the leader key)
        server.check_output("patronictl -c /etc/patroni/15-main.yml restart postgresql-15-main pg1 --force")
        assert wait_until(lambda: sql(server, "SHOW max_files_per_process") == "1100", 30)
        sql(server, "ALTER SYSTEM RESET max_files_per_process")
        sql(server, "SELECT pg_reload_conf()")
        row = sql(server, "SELECT coalesce(name, '(none)') || ' | ' || error FROM pg_file_settings WHERE error IS NOT NULL")
        assert row == '(none) | parameter "max_files_per_process" cannot be changed without restarting the server', row
        started = start_time(server)

        run = run_playbook({"postgresql_log_min_duration_statement": 500,
                            "postgresql_parameters": {"shared_buffers": "192MB"}, "postgresql_restart_allowed": False})
        assert sql(server, "SHOW log_min_duration_statement") == "500ms"
        assert RELOAD_HANDLER in run.stdout
        out = re.sub(r"\s+", " ", run.stdout)
        assert "refused its configuration" not in out
        waiting = re.search(r"NOT restarting \(postgresql_restart_allowed is false\) PostgreSQL for: ([^.]*)", out)
        assert waiting, out[-3000:]
        assert "shared_buffers" in waiting.group(1) and "max_files_per_process" in waiting.group(1), waiting.group(0)
        assert "log_min_duration_statement" not in waiting.group(1), waiting.group(0)
        assert RESTART_HANDLER not in run.stdout
        assert sql(server, "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'") == "t"
        assert sql(server, "SHOW max_files_per_process") == "1100"
        assert start_time(server) == started
    finally:
        sql(server, "ALTER SYSTEM RESET max_files_per_process")
        run = run_playbook()
    assert run.stdout.count(RESTART_HANDLER) == 1
    assert start_time(server) != started
    assert sql(server, "SHOW max_files_per_process") == "1000"
    assert sql(server, "SHOW shared_buffers") == "256MB"
    assert sql(server, "SHOW log_min_duration_statement") == "1s"
    # the files Patroni wrote at that restart hold what the server runs with
    assert sql(server, "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart") == ""


def test_check_mode_on_the_converged_host_changes_nothing(ansible_playbook):
    # The primary: the postgresql role, its backups and pg_schema's objects. (The idempotence
    # step has run the whole converge on every host; the drill's converge runs it once more.)
    run = ansible_playbook("converge.yml", check=True, limit="pg1")
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap_changed(run.stdout) == 0, changed_tasks(run.stdout)
