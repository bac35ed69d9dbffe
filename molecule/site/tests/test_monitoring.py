"""What an operator checks after the monitoring part of playbooks/site.yml: Prometheus sees every exporter, the
metrics carry values, the rules are loaded, an outage raises a real alert in Alertmanager, and the
daily report prints one row per host."""

from __future__ import annotations

import json
import re
import time
import urllib.parse

import pytest

from conftest import inventory_host, wait_until

testinfra_hosts = ["site-mon"]


@pytest.fixture(scope="module")
def db():
    return inventory_host("site-db")


def listen(host, default_file: str) -> str:
    args = host.file(default_file).content_string
    return re.search(r"--web\.listen-address=(\S+?)[\"\s]", args).group(1)


def get(host, url: str):
    """GET a JSON document from inside the monitoring host (where Prometheus listens)."""
    out = host.check_output(
        "python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' %s",
        url,
    )
    return json.loads(out)


def promql(host, query: str):
    base = listen(host, "/etc/default/prometheus")
    answer = get(host, f"http://{base}/api/v1/query?query={urllib.parse.quote(query)}")
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_every_target_is_up(host):
    base = listen(host, "/etc/default/prometheus")

    def all_up():
        targets = get(host, f"http://{base}/api/v1/targets?state=active")["data"]["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_until(all_up, 90, interval=3)
    assert targets, get(host, f"http://{base}/api/v1/targets?state=active")
    jobs = sorted((t["labels"]["job"], t["labels"]["instance"]) for t in targets)
    assert jobs == [
        ("alertmanager", "site-mon"),
        ("node", "site-db"),
        ("node", "site-mon"),
        ("postgres", "site-db"),
        ("prometheus", "site-mon"),
        ("redis", "site-db:6380"),
    ]
    # and no series of a target outside the inventory: Debian's package first starts Prometheus with
    # its example configuration, whose localhost:9100 would otherwise read down for five minutes
    assert promql(host, 'up{instance!~"site-.*"}') == []


@pytest.mark.parametrize(
    "query, check",
    [
        ("pg_up", lambda v: v == 1),
        # the server's own counters, through the monitoring role with pg_monitor over TLS
        ('sum(pg_stat_database_xact_commit{datname="postgres"})', lambda v: v > 0),
        # custom queries: replication (a primary here) and pg_stat_statements
        ("pg_replica_is_replica", lambda v: v == 0),
        ("count(pg_statements_calls)", lambda v: v > 0),
        ("redis_up", lambda v: v == 1),
        ('redis_memory_max_bytes{instance="site-db:6380"}', lambda v: v > 0),
        ('node_memory_MemTotal_bytes{instance="site-db"}', lambda v: v > 0),
        # textfile collector: the certificates' expiry, written by the timer
        ('min(onprem_certificate_not_after_timestamp_seconds{instance="site-db"}) - time()', lambda v: v > 86400 * 30),
    ],
)
def test_metric_has_a_value(host, query, check):
    result = wait_until(lambda: promql(host, query), 60, interval=3)
    assert result, f"no sample for {query}"
    value = float(result[0]["value"][1])
    assert check(value), f"{query} = {value}"


def test_rules_are_loaded_with_the_thresholds(host):
    base = listen(host, "/etc/default/prometheus")
    groups = get(host, f"http://{base}/api/v1/rules")["data"]["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"] if r["type"] == "alerting"}
    assert "> 2000" in rules["RedisClientsHigh"]["query"]
    assert "> 300" in rules["PostgresReplicaLagHigh"]["query"]
    assert "< 90" in rules["PostgresCacheHitRatioLow"]["query"]
    for name in ("PostgresWalArchivingFailing", "BackupTooOld", "RestoreVerificationFailed", "CertificateExpiringSoon"):
        assert name in rules
    # the services are healthy: no availability, archiving, certificate or blind-spot alert fires.
    # (Host CPU/memory/disk alerts may: the containers share a loaded test machine's resources.)
    # A rule is "pending" from one bad evaluation, which one scrape slowed past its timeout by a
    # loaded test machine can cause: a pending rule must clear within a minute and none may fire,
    # while a real outage stays pending until it fires.
    services = ("TargetDown", "PostgresDown", "RedisDown", "PostgresWalArchivingFailing",
                "CertificateExpiringSoon", "CertificateExpiryCritical", "TextfileMetricsStale")

    def states():
        groups = get(host, f"http://{base}/api/v1/rules")["data"]["groups"]
        return {r["name"]: r["state"] for g in groups for r in g["rules"] if r["type"] == "alerting"}

    def why():
        alerts = get(host, f"http://{base}/api/v1/alerts")["data"]["alerts"]
        targets = get(host, f"http://{base}/api/v1/targets?state=active")["data"]["activeTargets"]
        return {
            "alerts": [(a["labels"]["alertname"], a["labels"].get("instance"), a["state"]) for a in alerts
                       if a["labels"]["alertname"] in services],
            "unhealthy targets": [(t["labels"]["instance"], t["health"], t["lastError"], t["lastScrapeDuration"])
                                  for t in targets if t["health"] != "up"],
        }

    cleared = wait_until(lambda: not [n for n in services if states()[n] != "inactive"], 60, interval=3)
    assert cleared, why()
    assert [n for n in services if states()[n] == "firing"] == [], why()


def test_exporters_listen_only_on_the_private_address(db):
    sockets = db.check_output("ss -Hltn").splitlines()
    for port in (9100, 9187, 9121):
        bound = [line.split()[3] for line in sockets if line.split()[3].endswith(f":{port}")]
        assert len(bound) == 1, (port, bound)
        assert not bound[0].startswith(("0.0.0.0", "*", "[::]")), bound


def test_secrets_stay_out_of_process_lists_and_world_readable_files(db, generated_secrets):
    for path in ("/etc/default/prometheus-postgres-exporter", "/etc/default/prometheus-redis-exporter"):
        assert db.file(path).mode == 0o600
        assert db.file(path).user == "root"
    processes = db.check_output("ps -eo args")
    for name in ("vault_postgresql_monitoring_password", "vault_redis_monitoring_password"):
        assert generated_secrets[name] not in processes, name


def test_stopping_redis_fires_an_alert_in_alertmanager(host, db):
    am = listen(host, "/etc/default/prometheus-alertmanager")
    db.check_output("systemctl stop redis-server@6380.service")
    try:
        def firing():
            alerts = get(host, f"http://{am}/api/v2/alerts?filter=" + urllib.parse.quote('alertname="RedisDown"'))
            return [a for a in alerts if a["status"]["state"] == "active" and a["labels"]["instance"] == "site-db:6380"]

        started = time.monotonic()
        alerts = wait_until(firing, 120, interval=3)
        assert alerts, "RedisDown did not reach Alertmanager within 120 s"
        assert alerts[0]["labels"]["severity"] == "critical"
        print(f"RedisDown active in Alertmanager after {time.monotonic() - started:.0f} s")
    finally:
        db.check_output("systemctl start redis-server@6380.service")
    assert wait_until(lambda: list(promql(host, "redis_up == 1")), 60, interval=3)


def test_failing_wal_archiving_fires_an_alert_in_alertmanager(host, db):
    am = listen(host, "/etc/default/prometheus-alertmanager")
    psql = "runuser -u postgres -- psql -XAtq -c "
    db.check_output(psql + "\"ALTER SYSTEM SET archive_command = '/bin/false'\"")
    try:
        db.check_output(psql + "'SELECT pg_reload_conf()'")
        db.check_output(psql + "'CREATE TABLE IF NOT EXISTS drill_wal (i int); INSERT INTO drill_wal VALUES (1)'")
        db.check_output(psql + "'SELECT pg_switch_wal()'")

        def firing():
            alerts = get(host, f"http://{am}/api/v2/alerts?filter=" + urllib.parse.quote('alertname="PostgresWalArchivingFailing"'))
            return [a for a in alerts if a["status"]["state"] == "active" and a["labels"]["instance"] == "site-db"]

        assert wait_until(firing, 120, interval=3), "PostgresWalArchivingFailing did not reach Alertmanager within 120 s"
    finally:
        db.check_output(psql + "'ALTER SYSTEM RESET archive_command'")
        db.check_output(psql + "'SELECT pg_reload_conf()'")
        db.run(psql + "'DROP TABLE IF EXISTS drill_wal'")
    # archiving resumes: the failed segment is archived on the next attempt
    assert wait_until(lambda: promql(host, "pg_archiver_last_archived_timestamp_seconds > pg_archiver_last_failed_timestamp_seconds"), 120, interval=3)


def test_health_report_prints_one_table(ansible_playbook):
    run = ansible_playbook("../../playbooks/health_report.yml")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if "site-db" in line or "INSTANCE" in line]
    header = next(line for line in lines if "INSTANCE" in line)
    for column in ("CONN", "HIT%", "DEAD%max", "DISK%max", "BACKUP_h", "LAG_s", "R_CLUSTER_OK"):
        assert column in header
    assert any(re.search(r"site-db\s", line) for line in lines)
    assert any("site-db:6380" in line for line in lines)


@pytest.mark.parametrize(
    "bad, variable",
    [
        ({"monitoring_scrape_timeout": "1m"}, "monitoring_scrape_timeout"),
        ({"monitoring_alertmanager_webhook_urls": ["hooks.example/x"]}, "monitoring_alertmanager_webhook_urls"),
        ({"exporters_listen_address": "0.0.0.0"}, "exporters_listen_address"),
        ({"exporters_redis_password": ""}, "exporters_redis_password"),
    ],
)
def test_bad_input_fails_naming_the_variable(ansible_playbook, bad, variable):
    run = ansible_playbook("../../playbooks/monitoring.yml", bad, tags="exporters_validate,monitoring_validate")
    assert run.returncode != 0
    assert variable in run.stdout + run.stderr


def test_the_exporters_certificate_is_a_client_certificate_only(db):
    """The exporters' key is readable by prometheus: its certificate can only log in as the
    exporters (client authentication, exporters@<host>, no host name), never serve TLS as site-db."""
    text = db.check_output("openssl x509 -in /etc/prometheus/tls/exporters.crt -noout -subject -ext extendedKeyUsage,subjectAltName")
    assert "CN = exporters@site-db" in text and "TLS Web Client Authentication" in text, text
    assert "Server Authentication" not in text and "DNS:" not in text, text


FETCH = r"""
import ssl, sys, urllib.error, urllib.request
url, ca, cert = sys.argv[1], sys.argv[2], sys.argv[3:]
context = ssl.create_default_context(cafile=ca)
if cert:
    context.load_cert_chain(*cert)
try:
    answer = urllib.request.urlopen(url, timeout=10, context=context)
    print("STATUS", answer.status); print(answer.read().decode())
except urllib.error.HTTPError as error:
    print("STATUS", error.code); print(error.read().decode())
except Exception as error:
    print("ERROR", repr(error))
"""


def test_metrics_are_served_over_tls_to_prometheus_only(host, db):
    """The exporters' /metrics: plain HTTP gets no metrics, TLS without a client certificate is
    refused in the handshake, and Prometheus's certificate (what it scrapes with) gets them."""
    address = listen(db, "/etc/default/prometheus-node-exporter").rsplit(":", 1)[0]
    scrape = "/etc/prometheus/scrape-tls"

    def fetch(url, *cert):
        return host.check_output("python3 -c %s %s %s " + " ".join(["%s"] * len(cert)), FETCH, url, f"{scrape}/ca.crt", *cert)

    for port, metric in ((9100, "node_exporter_build_info"), (9187, "pg_up"), (9121, "redis_up")):
        plain = fetch(f"http://{address}:{port}/metrics")
        assert plain.startswith("STATUS 400") and "Client sent an HTTP request to an HTTPS server" in plain, (port, plain)
        assert metric not in plain
        anonymous = fetch(f"https://{address}:{port}/metrics")
        # the server's alert for a missing client certificate: bad_certificate (42) from Debian's Go
        # builds, certificate_required (116) from newer ones
        assert anonymous.startswith("ERROR") and re.search(r"alert (bad certificate|certificate required)", anonymous.lower()), \
            (port, anonymous)
        scraped = fetch(f"https://{address}:{port}/metrics", f"{scrape}/prometheus.crt", f"{scrape}/prometheus.key")
        assert scraped.startswith("STATUS 200") and metric in scraped, (port, scraped[:500])
