"""playbooks/rotate.yml on the converged site, with clients around it, in the three runs of a
rotation of the CA:
  start    the new CA is trusted on every host beside the current one; the servers still present
           the certificates of the current one;
  switch   (with every generated password and every certificate) a PostgreSQL session opened before
           keeps working through the run; the old passwords are refused afterwards and the new ones
           work; every certificate and key is new and issued by the new CA, and the servers present
           them; a client certificate of the previous CA is still accepted (the overlap); the
           exporters and the WAL archive go on with the new secrets; nothing is printed;
  finish   the hosts trust the new CA only: the previous CA's client certificate is refused; a key
           mode and a certificate changed on the host before the run are put right (the
           controller's records of the certificates no longer match them).

The drill updates the session's `generated_secrets` in place, so that the tests after it (this
file sorts before test_site.py) use the new passwords, as an application would after its deploy."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

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
# Every certificate and key of the collection on a host, and the files that hold what it trusts.
CERTS = ("find /etc/postgresql /etc/redis /etc/prometheus /etc/patroni /etc/etcd /etc/pgbackrest \\( -name '*.crt' "
         "-o -name '*.key' \\) ! -name ca.crt -type f 2>/dev/null | sort | xargs -r sha256sum")
TRUST = "find /etc/postgresql /etc/redis /etc/prometheus -name ca.crt -type f | sort"
# The node exporter on site-db asks every client for a certificate of a CA it trusts (its ca.crt).
# Run on site-mon with a client certificate and key: "accepted" or "refused <why>".
SCRAPE = """python3 - %s %s <<'EOF'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="/etc/prometheus/scrape-tls/ca.crt")
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
try:
    urllib.request.urlopen("https://10.213.60.10:9100/metrics", context=ctx, timeout=10).read()
    print("accepted")
except Exception as error:
    print("refused", error)
EOF"""
PKI = Path(os.environ.get("MOLECULE_INVENTORY_FILE", "/nonexistent")).parent / "pki"


def read_secrets() -> dict:
    path = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / "group_vars" / "all" / "vault_generated.yml"
    out = subprocess.run(["ansible-vault", "view", str(path)], capture_output=True, text=True, check=True)
    return yaml.safe_load(out.stdout)


def fingerprints(host) -> dict:
    return {line.split()[1]: line.split()[0] for line in host.check_output(CERTS).splitlines()}


def fingerprint(pem: str) -> str:
    """SHA-256 of the first certificate of a PEM text, worked out by openssl on the controller."""
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem,
                         capture_output=True, text=True, check=True).stdout
    return out.split("=", 1)[1].strip().replace(":", "").lower()


def certificates(pem: str) -> list[str]:
    """The fingerprints of every certificate of a PEM bundle."""
    blocks = pem.split("-----END CERTIFICATE-----")[:-1]
    return [fingerprint(block + "-----END CERTIFICATE-----\n") for block in blocks]


def trusted(host) -> dict:
    """The fingerprints of the CA certificates in each ca.crt of the host."""
    return {path: certificates(host.file(path).content_string) for path in host.check_output(TRUST).splitlines()}


def served(host, port: int, starttls: str = "") -> str:
    """SHA-256 of the certificate the server on 10.213.60.10:port presents now."""
    pem = host.check_output("openssl s_client -connect 10.213.60.10:%d %s </dev/null 2>/dev/null | openssl x509"
                            % (port, starttls))
    return fingerprint(pem)


def rotate(ansible_playbook, **extra):
    started = time.time()
    run = ansible_playbook("../../playbooks/rotate.yml", extra, timeout=1200)
    print(f"drill: rotate.yml {extra} took {time.time() - started:.0f} s")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run


@pytest.fixture(scope="module")
def drill(host, ansible_playbook, generated_secrets):
    mon = inventory_host("site-mon")
    old_ca = fingerprint((PKI / "ca.crt").read_text())
    before = {"secrets": read_secrets(), "certs": {"site-db": fingerprints(host), "site-mon": fingerprints(mon)},
              "served": {"postgresql": served(host, 5432, "-starttls postgres"), "redis": served(host, 6380)}}
    assert before["secrets"]["vault_postgresql_app_password"] == generated_secrets["vault_postgresql_app_password"]
    # Prometheus's client certificate of the current CA, kept for the end of the overlap.
    mon.check_output("install -m 0600 /etc/prometheus/scrape-tls/prometheus.crt /root/old-prometheus.crt && "
                     "install -m 0600 /etc/prometheus/scrape-tls/prometheus.key /root/old-prometheus.key")

    runs = {"start": rotate(ansible_playbook, rotate_ca="start")}
    new_ca = fingerprint((PKI / "ca-next.crt").read_text())
    start = {"trusted": {"site-db": trusted(host), "site-mon": trusted(mon)},
             "bundle": certificates((PKI / "ca-bundle.crt").read_text()),
             "served": {"postgresql": served(host, 5432, "-starttls postgres"), "redis": served(host, 6380)}}

    # A session of the application, opened before the switch: one query a second on one connection.
    # Its password reaches libpq in a file (never on a command line).
    host.check_output(
        "umask 077; printf '10.213.60.10:5432:tripgen_ai:ai_service:%s\\n' > /root/rotation.pgpass; "
        "echo 'SELECT pg_backend_pid(), round(extract(epoch FROM clock_timestamp()), 1) \\watch 1' > /root/rotation.sql",
        before["secrets"]["vault_postgresql_app_password"])
    host.check_output("rm -f /root/rotation.log; PGPASSFILE=/root/rotation.pgpass setsid nohup psql -XAtq %s "
                      "-f /root/rotation.sql >/root/rotation.log 2>&1 &", PG)
    # two answers: the first is a second or more before the run
    assert wait_until(lambda: host.run("grep -c '|' /root/rotation.log").stdout.strip() not in ("", "0", "1"), 20), \
        host.run("cat /root/rotation.log").stdout
    switch_started = time.time()
    runs["switch"] = rotate(ansible_playbook, rotate_ca="switch", rotate_secrets="all", rotate_certificates=True)
    switch_ended = time.time()
    time.sleep(2)
    host.run("pkill -f rotation.sql")
    after = {"secrets": read_secrets(), "certs": {"site-db": fingerprints(host), "site-mon": fingerprints(mon)},
             "trusted": {"site-db": trusted(host), "site-mon": trusted(mon)},
             "old client": mon.check_output(SCRAPE, "/root/old-prometheus.crt", "/root/old-prometheus.key"),
             "new client": mon.check_output(SCRAPE, "/etc/prometheus/scrape-tls/prometheus.crt",
                                            "/etc/prometheus/scrape-tls/prometheus.key")}
    # The tests after this file use the new passwords.
    generated_secrets.update(after["secrets"])

    # Files the controller's records no longer match: the finish run must take the long way for them.
    host.check_output("chmod 0644 /etc/redis/tls/redis.key && "
                      "cp /etc/prometheus/tls/exporters.crt /etc/prometheus/tls/exporters-web.crt")
    runs["finish"] = rotate(ansible_playbook, rotate_ca="finish")
    refused_at = int(time.time())
    finish = {"trusted": {"site-db": trusted(host), "site-mon": trusted(mon)},
              "bundle": certificates((PKI / "ca-bundle.crt").read_text()),
              "old client": mon.check_output(SCRAPE, "/root/old-prometheus.crt", "/root/old-prometheus.key"),
              "new client": mon.check_output(SCRAPE, "/etc/prometheus/scrape-tls/prometheus.crt",
                                             "/etc/prometheus/scrape-tls/prometheus.key")}
    # The reason is the server's (TLS 1.3: the client sees the connection close after its handshake).
    finish["exporter log"] = host.check_output("journalctl -u prometheus-node-exporter --no-pager -o cat --since @%s",
                                               str(refused_at))
    return {"runs": runs, "before": before, "start": start, "after": after, "finish": finish, "mon": mon,
            "old_ca": old_ca, "new_ca": new_ca, "switch_started": switch_started, "switch_ended": switch_ended,
            "session": host.check_output("cat /root/rotation.log")}


def test_start_adds_the_new_ca_beside_the_current_one_and_changes_no_certificate(drill):
    assert drill["new_ca"] != drill["old_ca"]
    assert drill["start"]["bundle"] == [drill["old_ca"], drill["new_ca"]]
    for name, files in drill["start"]["trusted"].items():
        assert files and all(cas == [drill["old_ca"], drill["new_ca"]] for cas in files.values()), (name, files)
    assert drill["start"]["served"] == drill["before"]["served"]


def test_the_runs_print_no_secret(drill):
    output = "".join(run.stdout + run.stderr for run in drill["runs"].values())
    for name in ROTATED + KEPT:
        for when in ("before", "after"):
            assert drill[when]["secrets"][name] not in output, (name, when)


def test_every_generated_password_is_new_but_the_backup_passphrase_and_the_ca_passphrase(drill):
    before, after = drill["before"]["secrets"], drill["after"]["secrets"]
    for name in ROTATED:
        assert after[name] != before[name], name
        assert len(after[name]) == 40 and after[name].isalnum(), name
    for name in KEPT:
        assert after[name] == before[name], name


def test_every_certificate_and_key_is_new_and_issued_by_the_new_ca(host, drill):
    for name in ("site-db", "site-mon"):
        before, after = drill["before"]["certs"][name], drill["after"]["certs"][name]
        assert len(before) >= 4 and sorted(before) == sorted(after), (name, sorted(before), sorted(after))
        assert [path for path in before if before[path] == after[path]] == [], name
    new_ca = host.file(PG_CA).content_string  # after finish: the new CA alone
    assert certificates(new_ca) == [drill["new_ca"]]
    for path in drill["after"]["certs"]["site-db"]:
        if path.endswith(".crt"):
            assert host.run("openssl verify -CAfile %s %s", PG_CA, path).rc == 0, path


def test_the_servers_present_their_new_certificates(host):
    assert served(host, 5432, "-starttls postgres") == fingerprint(host.file("/etc/postgresql/15/main/tls/server.crt").content_string)
    assert served(host, 6380) == fingerprint(host.file("/etc/redis/tls/redis.crt").content_string)


def test_the_session_opened_before_kept_working_through_the_switch(drill):
    rows = [line.split("|") for line in drill["session"].splitlines() if line.count("|") == 1]
    assert "FATAL" not in drill["session"] and "ERROR" not in drill["session"], drill["session"][-2000:]
    pids = {row[0] for row in rows}
    seconds = [float(row[1]) for row in rows]
    assert len(pids) == 1, pids
    assert seconds[0] < drill["switch_started"] and seconds[-1] > drill["switch_ended"], (seconds[0], seconds[-1])
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


def test_the_previous_cas_client_certificate_is_accepted_until_finish_and_refused_after(drill):
    assert drill["after"]["old client"] == "accepted", drill["after"]["old client"]
    assert drill["after"]["new client"] == "accepted", drill["after"]["new client"]
    for name, files in drill["after"]["trusted"].items():
        assert all(cas == [drill["new_ca"], drill["old_ca"]] for cas in files.values()), (name, files)
    assert drill["finish"]["old client"].startswith("refused"), drill["finish"]["old client"]
    assert ("TLS handshake error from 10.213.60.11:" in drill["finish"]["exporter log"]
            and "failed to verify client certificate: x509: certificate signed by unknown authority"
            in drill["finish"]["exporter log"]), drill["finish"]["exporter log"]
    assert drill["finish"]["new client"] == "accepted", drill["finish"]["new client"]
    assert drill["finish"]["bundle"] == [drill["new_ca"]]
    for name, files in drill["finish"]["trusted"].items():
        assert all(cas == [drill["new_ca"]] for cas in files.values()), (name, files)
    assert not (PKI / "ca-previous.key").exists() and not (PKI / "ca-next.key").exists()


def scraped_after(mon, metric: str, after: float):
    """The series of `metric` that are 1 in a scrape made after `after` (a failed login gives 0)."""
    query = "timestamp(%s == 1) > %d" % (metric, after)
    out = mon.check_output(
        "python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' %s",
        "http://10.213.60.11:9090/api/v1/query?query=" + urllib.parse.quote(query))
    return json.loads(out)["data"]["result"]


def test_a_certificate_changed_on_the_host_is_put_right_by_the_next_run(host, drill):
    """Before finish, the drill gave redis.key mode 0644 and put the exporters' client certificate in
    place of their server certificate: the records on the controller no longer match, and finish
    restores the mode and issues the server certificate for its own key again."""
    assert drill["runs"]["finish"].returncode == 0
    assert host.file("/etc/redis/tls/redis.key").mode == 0o600
    web = "/etc/prometheus/tls/exporters-web"
    assert host.check_output("openssl x509 -in %s.crt -noout -pubkey", web) == \
        host.check_output("openssl pkey -in %s.key -pubout", web)
    assert "TLS Web Server Authentication" in host.check_output("openssl x509 -in %s.crt -noout -ext extendedKeyUsage", web)


def test_the_exporters_and_the_wal_archive_go_on_with_the_new_secrets(host, drill):
    now = time.time()
    # the node exporters (site-db and site-mon) let Prometheus in with its new client certificate
    for metric, series in (("pg_up", 1), ("redis_up", 1), ('up{job="node"}', 2)):
        assert wait_until(lambda metric=metric, series=series: len(scraped_after(drill["mon"], metric, now)) == series,
                          60, interval=3), metric
    check = host.run("runuser -u postgres -- pgbackrest --stanza=main check")
    assert check.rc == 0, check.stdout + check.stderr
