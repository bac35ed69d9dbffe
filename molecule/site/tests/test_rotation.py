"""playbooks/rotate.yml on the converged site, with clients around it: every generated password
but the pgBackRest passphrase and every host certificate (with its key) are replaced; a PostgreSQL
session opened before keeps working through the run; the old passwords are refused afterwards and
the new ones work, for PostgreSQL and Redis; the servers present the new certificates; the
exporters and the WAL archive go on with the new secrets; nothing is printed.

The drill updates the session's `generated_secrets` in place, so that the tests after it (this
file sorts before test_site.py) use the new passwords, as an application would after its deploy."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from conftest import inventory_host, wait_until

testinfra_hosts = ["site-db"]

ROTATED = (
    "vault_postgresql_app_password", "vault_postgresql_readonly_password", "vault_postgresql_monitoring_password",
    "vault_postgresql_admin_password", "vault_redis_admin_password", "vault_redis_app_password",
    "vault_redis_monitoring_password", "vault_redis_backup_password", "vault_redis_replication_password",
)
KEPT = ("vault_pgbackrest_cipher_pass", "vault_pki_ca_passphrase")
PG_CA = "/etc/postgresql/15/main/tls/ca.crt"
REDIS_CA = "/etc/redis/tls/ca.crt"
PG = "host=10.213.60.10 dbname=tripgen_ai user=ai_service sslmode=verify-full sslrootcert=%s" % PG_CA
REDIS = "redis-cli --tls --cacert %s -h 10.213.60.10 -p 6380 --no-auth-warning --user %s --pass %s PING"
# Every certificate and key of the collection on a host (ca.crt is the CA's, which stays).
CERTS = ("find /etc/postgresql /etc/redis /etc/prometheus /etc/patroni /etc/etcd /etc/pgbackrest \\( -name '*.crt' "
         "-o -name '*.key' \\) ! -name ca.crt -type f 2>/dev/null | sort | xargs -r sha256sum")


def read_secrets() -> dict:
    import os
    import subprocess
    from pathlib import Path

    import yaml

    path = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / "group_vars" / "all" / "vault_generated.yml"
    out = subprocess.run(["ansible-vault", "view", str(path)], capture_output=True, text=True, check=True)
    return yaml.safe_load(out.stdout)


def fingerprints(host) -> dict:
    return {line.split()[1]: line.split()[0] for line in host.check_output(CERTS).splitlines()}


def served_certificate(host, port: int, starttls: str = "") -> str:
    """SHA-256 of the certificate the server on 10.213.60.10:port presents now."""
    return host.check_output(
        "openssl s_client -connect 10.213.60.10:%d %s </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
        % (port, starttls)).split("=", 1)[1].replace(":", "").lower()


def file_certificate(host, path: str) -> str:
    return host.check_output("openssl x509 -in %s -noout -fingerprint -sha256", path).split("=", 1)[1].replace(":", "").lower()


@pytest.fixture(scope="module")
def drill(host, ansible_playbook, generated_secrets):
    mon = inventory_host("site-mon")
    before = {"secrets": read_secrets(), "certs": {"site-db": fingerprints(host), "site-mon": fingerprints(mon)}}
    assert before["secrets"]["vault_postgresql_app_password"] == generated_secrets["vault_postgresql_app_password"]
    # A session of the application, opened before the run: one query a second on one connection.
    # Its password reaches libpq in a file (never on a command line).
    host.check_output(
        "umask 077; printf '10.213.60.10:5432:tripgen_ai:ai_service:%s\\n' > /root/rotation.pgpass; "
        "echo 'SELECT pg_backend_pid(), round(extract(epoch FROM clock_timestamp()), 1) \\watch 1' > /root/rotation.sql",
        before["secrets"]["vault_postgresql_app_password"])
    host.check_output("rm -f /root/rotation.log; PGPASSFILE=/root/rotation.pgpass setsid nohup psql -XAtq %s "
                      "-f /root/rotation.sql >/root/rotation.log 2>&1 &", PG)
    assert wait_until(lambda: host.run("grep -c '|' /root/rotation.log").stdout.strip() not in ("", "0"), 20), \
        host.run("cat /root/rotation.log").stdout
    started = time.time()
    run = ansible_playbook("../../playbooks/rotate.yml", timeout=1200)
    ended = time.time()
    print(f"drill: rotate.yml took {ended - started:.0f} s")
    time.sleep(2)
    host.run("pkill -f rotation.sql")
    after = {"secrets": read_secrets(), "certs": {"site-db": fingerprints(host), "site-mon": fingerprints(mon)}}
    # The tests after this file use the new passwords.
    generated_secrets.update(after["secrets"])
    return {"run": run, "before": before, "after": after, "started": started, "ended": ended,
            "session": host.check_output("cat /root/rotation.log"), "mon": mon}


def test_rotation_runs_without_printing_a_secret(drill):
    run = drill["run"]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for name in ROTATED + KEPT:
        for when in ("before", "after"):
            assert drill[when]["secrets"][name] not in run.stdout + run.stderr, (name, when)


def test_every_generated_password_is_new_but_the_backup_passphrase_and_the_ca_passphrase(drill):
    before, after = drill["before"]["secrets"], drill["after"]["secrets"]
    for name in ROTATED:
        assert after[name] != before[name], name
        assert len(after[name]) == 40 and after[name].isalnum(), name
    for name in KEPT:
        assert after[name] == before[name], name


def test_every_certificate_and_key_is_new(drill):
    for name in ("site-db", "site-mon"):
        before, after = drill["before"]["certs"][name], drill["after"]["certs"][name]
        assert len(before) >= 4 and sorted(before) == sorted(after), (name, sorted(before), sorted(after))
        assert [path for path in before if before[path] == after[path]] == [], name


def test_the_servers_present_their_new_certificates(host):
    assert served_certificate(host, 5432, "-starttls postgres") == file_certificate(host, "/etc/postgresql/15/main/tls/server.crt")
    assert served_certificate(host, 6380) == file_certificate(host, "/etc/redis/tls/redis.crt")


def test_the_session_opened_before_kept_working_through_the_run(drill):
    rows = [line.split("|") for line in drill["session"].splitlines() if line.count("|") == 1]
    assert "FATAL" not in drill["session"] and "ERROR" not in drill["session"], drill["session"][-2000:]
    pids = {pid for pid, _ in rows}
    seconds = [float(at) for _, at in rows]
    assert len(pids) == 1, pids
    assert seconds[0] < drill["started"] and seconds[-1] > drill["ended"], (seconds[0], seconds[-1])
    gaps = [b - a for a, b in zip(seconds, seconds[1:])]
    print(f"drill: the session answered {len(rows)} queries; longest gap {max(gaps):.1f} s")
    assert max(gaps) <= 5, max(gaps)


def test_old_passwords_are_refused_and_new_ones_work(host, drill):
    before, after = drill["before"]["secrets"], drill["after"]["secrets"]
    for secrets, expected in ((before, False), (after, True)):
        run = host.run("PGPASSWORD=%s psql -XAtq %s -c 'SELECT 1'", secrets["vault_postgresql_app_password"], PG)
        assert (run.rc == 0) == expected, run.stderr
        if not expected:
            assert 'password authentication failed for user "ai_service"' in run.stderr, run.stderr
        for user, name in (("ai-service", "vault_redis_app_password"), ("admin", "vault_redis_admin_password")):
            cli = host.run(REDIS, REDIS_CA, user, secrets[name])
            if expected:
                assert cli.stdout.strip() == "PONG", (user, cli.stdout, cli.stderr)
            else:
                assert "AUTH failed: WRONGPASS" in cli.stderr, (user, cli.stdout, cli.stderr)


def test_the_exporters_and_the_wal_archive_go_on_with_the_new_secrets(host, drill):
    mon = drill["mon"]

    def fresh(metric: str):
        """The series of `metric` that are 1 in a scrape made after the run (a failed login gives 0)."""
        query = "timestamp(%s == 1) > %d" % (metric, drill["ended"])
        out = mon.check_output(
            "python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' %s",
            "http://10.213.60.11:9090/api/v1/query?query=" + urllib.parse.quote(query))
        return json.loads(out)["data"]["result"]

    for metric in ("pg_up", "redis_up"):
        assert wait_until(lambda metric=metric: fresh(metric), 60, interval=3), metric
    check = host.run("runuser -u postgres -- pgbackrest --stanza=main check")
    assert check.rc == 0, check.stdout + check.stderr
