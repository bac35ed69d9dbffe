"""What an operator checks about backups: WAL reaches the archive, a point-in-time restore gives
back exactly the data of that moment (paused there for inspection first), the verification job
catches a broken backup and runs on one server only, retention removes old backups, and a logical
dump, kept encrypted in the repository, restores - and a failing one never costs the good ones.

The repository is on a dedicated host (backup-repo), reached from pg1 (the primary) through
pgBackRest's TLS server: backups run there; archiving, restores and dumps on pg1 (the dumps go
into the repository); the verification on pg3. pg2 (sync standby) and pg3 (async replica) stream
from pg1: after a restore both must stream the restored timeline.

The tests run in file order and build on each other (PITR changes the timeline, retention
removes backups), like the steps of a restore drill; they run after the replication suite and
before the failover drill.
"""

import datetime
import json
import os
import re
import time
from pathlib import Path

import pytest
import testinfra

from cluster import sql as psql
from conftest import recap_changed, wait_until

testinfra_hosts = ["pg1"]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
DATA = "/var/lib/postgresql/15/main"
REPO = "/var/lib/pgbackrest"
# The dumps in the repository (dump/<stanza>/<database>/), and the test-only passphrase of the
# scenario's repository (molecule.yml), which must appear in no file but the root-only one.
DUMPS = f"{REPO}/dump/main"
PASSPHRASE = "molecule-only-backup-passphrase"
VERIFY_UNITS = ("/usr/local/sbin/pgbackrest-verify", "/etc/systemd/system/pgbackrest-verify.service",
                "/etc/systemd/system/pgbackrest-verify.timer")
# What the restore tests pass on to each other: the state before the paused restore.
PITR = {}


@pytest.fixture(scope="module")
def repo():
    return testinfra.get_host(f"ansible://backup-repo?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def replica():
    """The asynchronous replica."""
    return testinfra.get_host(f"ansible://pg3?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def replicas(replica):
    return {"pg2": testinfra.get_host(f"ansible://pg2?ansible_inventory={INVENTORY}"), "pg3": replica}


def pgbackrest(host, *args):
    return host.check_output("runuser -u postgres -- pgbackrest --stanza=main " + " ".join(args))


def pgbackrest_repo(repo, *args):
    return repo.check_output("runuser -u pgbackrest -- pgbackrest --stanza=main " + " ".join(args))


def info(host):
    return json.loads(pgbackrest(host, "--output=json", "info"))[0]


def backup(host, repo, kind):
    """A backup as the timer takes it: on the repository host."""
    repo.check_output("systemctl start pgbackrest-backup@%s.service", kind)
    return info(host)["backup"][-1]


def next_segment(name):
    timeline, log, seg = name[:8], int(name[8:16], 16), int(name[16:24], 16) + 1
    if seg == 0x100:
        log, seg = log + 1, 0
    return f"{timeline}{log:08X}{seg:08X}"


def switch_and_wait_archived(host):
    """Close the current WAL segment and wait until PostgreSQL reports it archived."""
    segment = psql(host, "SELECT pg_walfile_name(pg_switch_wal())", db="postgres")
    archived = wait_until(lambda: psql(host, "SELECT last_archived_wal FROM pg_stat_archiver", db="postgres") >= segment, 60, interval=1)
    assert archived, f"{segment} was not archived within 60 s"
    return segment


def test_archiving_goes_through_pgbackrest(host):
    assert psql(host, "SHOW archive_mode") == "on"
    assert "pgbackrest --stanza=main archive-push %p" in psql(host, "SHOW archive_command")
    assert psql(host, "SHOW archive_timeout") == "1min"
    switch_and_wait_archived(host)
    assert psql(host, "SELECT failed_count FROM pg_stat_archiver", db="postgres") == "0"


def test_the_repository_is_on_the_repository_host_only(host, repo):
    assert repo.file(f"{REPO}/archive/main/archive.info").exists
    assert repo.file(f"{REPO}/backup/main/backup.info").exists
    assert not host.file(f"{REPO}/archive").exists and not host.file(f"{REPO}/backup").exists
    # the PostgreSQL server reads the repository through the repository host's TLS server
    assert "repo1-host=backup-repo" in host.check_output("cat /etc/pgbackrest/pgbackrest.conf")
    assert info(host)["status"]["message"] == "ok"


def repository_status(run) -> dict:
    """The repository's status in the output of `pgbackrest --output=json info`."""
    assert run.rc == 0, run.stderr  # info reports an unreadable repository in its output
    return json.loads(run.stdout)[0]["repo"][0]["status"]


def test_the_tls_server_lets_in_only_the_authorised_certificate_names(host, repo):
    tls = "/etc/pgbackrest/tls"
    # The way a refusal is told from a success below: pg1's own certificate is let in.
    assert '"status":{"code":0' in pgbackrest(host, "--output=json", "info")
    # The repository host's own client certificate is from the same CA, but its name
    # (pgbackrest@backup-repo) is not authorised on its own server (only the PostgreSQL servers'
    # are): refused.
    own = repo.run("runuser -u pgbackrest -- pgbackrest --stanza=main --repo1-host=backup-repo --repo1-host-type=tls"
                   f" --repo1-host-ca-file={tls}/ca.crt --repo1-host-cert-file={tls}/pgbackrest-client.crt"
                   f" --repo1-host-key-file={tls}/pgbackrest-client.key --output=json info")
    # info reports a repository it cannot reach in its JSON (code 99) with pgBackRest's error
    # class: the server knows the certificate and refuses its name.
    status = repository_status(own)
    assert status["code"] == 99, status
    assert status["message"].startswith("[AccessError] ") and status["message"].endswith(": access denied"), status
    # A certificate that claims pg1's name but is not from the CA: refused.
    host.check_output("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
                      " -subj /CN=pg1 -keyout /tmp/forged.key -out /tmp/forged.crt 2>/dev/null"
                      " && chown postgres /tmp/forged.key /tmp/forged.crt")
    forged = host.run("runuser -u postgres -- pgbackrest --stanza=main --repo1-host-cert-file=/tmp/forged.crt"
                      " --repo1-host-key-file=/tmp/forged.key --output=json info")
    # the TLS handshake itself fails: the server does not know the certificate's issuer
    status = repository_status(forged)
    assert status["code"] == 99, status
    assert status["message"].startswith("[ServiceError] TLS error ") and "tlsv1 alert unknown ca" in status["message"], status


def test_only_pgbackrest_client_certificates_reach_the_repository(host):
    """One certificate per service and purpose: pg1's other certificates come from the same CA but
    cannot pull backups. PostgreSQL's (server authentication only) fails the TLS handshake as a
    client certificate; a copy of pgBackRest's own client certificate is let in."""
    tls = "/etc/pgbackrest/tls"
    usage = host.check_output(f"openssl x509 -in {tls}/pgbackrest-client.crt -noout -subject -ext extendedKeyUsage,subjectAltName")
    assert "CN = pgbackrest@pg1" in usage and "TLS Web Client Authentication" in usage, usage
    assert "Server Authentication" not in usage and "DNS:" not in usage, usage
    server_usage = host.check_output(f"openssl x509 -in {tls}/pgbackrest.crt -noout -ext extendedKeyUsage")
    assert "TLS Web Server Authentication" in server_usage and "Client Authentication" not in server_usage, server_usage

    def info_with(cert: str, key: str) -> dict:
        host.check_output(f"install -o postgres -m 0600 {key} /tmp/probe.key && install -o postgres -m 0644 {cert} /tmp/probe.crt")
        try:
            return repository_status(host.run("runuser -u postgres -- pgbackrest --stanza=main --repo1-host-cert-file=/tmp/probe.crt"
                                              " --repo1-host-key-file=/tmp/probe.key --output=json info"))
        finally:
            host.run("rm -f /tmp/probe.key /tmp/probe.crt")

    pg_tls = "/etc/postgresql/15/main/tls"
    status = info_with(f"{pg_tls}/server.crt", f"{pg_tls}/server.key")
    assert status["code"] == 99, status
    assert status["message"].startswith("[ServiceError] TLS error ") and "unsupported certificate" in status["message"], status
    status = info_with(f"{tls}/pgbackrest.crt", f"{tls}/pgbackrest.key")  # the server's own
    assert status["code"] == 99 and "unsupported certificate" in status["message"], status
    assert info_with(f"{tls}/pgbackrest-client.crt", f"{tls}/pgbackrest-client.key")["code"] == 0


def test_the_tls_server_refuses_tls_1_1(host):
    """pgBackRest's server, offered TLS 1.1 for real (SECLEVEL=0 lowers the client's own floor),
    answers with alert 70 (protocol_version); TLS 1.2 with pg1's client certificate is let in."""
    tls = "/etc/pgbackrest/tls"
    s_client = (f"echo | timeout 10 openssl s_client -connect backup-repo:8432 -CAfile {tls}/ca.crt"
                f" -cert {tls}/pgbackrest-client.crt -key {tls}/pgbackrest-client.key -cipher DEFAULT:@SECLEVEL=0 {{}}")
    old = host.run(s_client.format("-tls1_1"))
    assert old.rc == 1 and "Cipher is (NONE)" in old.stdout, old.stdout
    assert "tlsv1 alert protocol version" in old.stderr and "SSL alert number 70" in old.stderr, old.stderr
    new = host.run(s_client.format("-tls1_2"))
    assert "New, TLSv1.2, Cipher is " in new.stdout and "Verify return code: 0 (ok)" in new.stdout, new.stdout + new.stderr


def test_archive_holds_the_wal_since_the_last_full_backup(host, repo):
    last = switch_and_wait_archived(host)
    full = [b for b in info(host)["backup"] if b["type"] == "full"][-1]
    listing = pgbackrest_repo(repo, "repo-ls", "--recurse", "--output=text", "archive/main/15-1")
    archived = {line.rsplit("/", 1)[-1][:24] for line in listing.splitlines() if "-" in line.rsplit("/", 1)[-1]}
    segment, missing = full["archive"]["start"], []
    while segment <= last:
        if segment not in archived:
            missing.append(segment)
        segment = next_segment(segment)
    assert not missing, f"WAL missing from the archive since full backup {full['label']}: {missing}"
    # the repository is encrypted with the passphrase from the inventory
    assert info(host)["cipher"] == "aes-256-cbc"


def test_status_command_reports_archiving_and_backup_age(host):
    run = host.run("pgbackrest-status")
    status = json.loads(run.stdout)
    assert run.rc == 0, status["problems"]
    assert status["healthy"] is True
    assert status["archiver"]["failed_count"] == 0
    assert status["repository"]["newest_backup_age_hours"] < 1
    assert status["repository"]["last_full"]["label"]


def test_the_replica_reports_the_same_backups(host, replica):
    # A standby reads the repository through the repository host, so its pgbackrest-status
    # (what the NoBackup and BackupTooOld alerts read on every server) lists the primary's backups.
    run = replica.run("pgbackrest-status")
    status = json.loads(run.stdout)
    assert run.rc == 0, status["problems"]
    assert status["archiver"]["standby"] is True
    labels = [b["label"] for b in info(host)["backup"]]
    assert status["repository"]["backup_count"] == len(labels) > 0
    assert status["repository"]["last_full"]["label"] in labels


def test_backup_timers_are_scheduled(host, repo, replicas):
    servers = {"pg1": host, **replicas}
    # backups on the repository host, and nowhere else
    for timer in ("full", "diff", "incr"):
        assert repo.service(f"pgbackrest-{timer}.timer").is_enabled
        assert repo.service(f"pgbackrest-{timer}.timer").is_running
        for server in servers.values():
            assert not server.file(f"/etc/systemd/system/pgbackrest-{timer}.timer").exists
    for timer in ("verify", "dump"):
        assert not repo.file(f"/etc/systemd/system/pgbackrest-{timer}.timer").exists
    # dumps on every server (the primary dumps); the verification once per cluster: on pg3, the
    # inventory's only asynchronous replica (pg2 is the synchronous one), nowhere else
    for name, server in servers.items():
        assert server.service("pgbackrest-dump.timer").is_enabled, name
        assert server.service("pgbackrest-dump.timer").is_running, name
        if name == "pg3":
            assert server.service("pgbackrest-verify.timer").is_enabled
            assert server.service("pgbackrest-verify.timer").is_running
        else:
            assert [p for p in VERIFY_UNITS if server.file(p).exists] == [], name
    assert repo.check_output("systemctl show -p TimersCalendar --value pgbackrest-incr.timer").count("00/6:30:00") == 1
    # (the retention, 35 days, is driven for real by test_retention_expires_full_backups_older_than_35_days)


def test_restore_refuses_without_confirmation(host, ansible_playbook):
    aside_before = host.run("ls -d %s.before-restore-*", DATA).stdout
    run = ansible_playbook(str(PROJECT / "playbooks/restore.yml"), {"restore_target_type": "latest"})
    assert run.returncode != 0
    assert "restore_confirm" in run.stdout + run.stderr
    assert host.service("patroni@15-main").is_running
    assert host.run("ls -d %s.before-restore-*", DATA).stdout == aside_before


def test_restore_refuses_to_pause_without_a_target(host, ansible_playbook):
    aside_before = host.run("ls -d %s.before-restore-*", DATA).stdout
    run = ansible_playbook(str(PROJECT / "playbooks/restore.yml"),
                           {"restore_target_action": "pause", "restore_confirm": "yes"})
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0
    assert "restore_target_action (restore_target_action in playbooks/restore.yml) is pause, which needs a target" in out
    assert host.service("patroni@15-main").is_running
    assert psql(host, "SELECT pg_is_in_recovery()") == "f"
    assert host.run("ls -d %s.before-restore-*", DATA).stdout == aside_before


def test_point_in_time_restore_pauses_at_t_for_inspection(host, replicas, ansible_playbook):
    psql(host, "DROP TABLE IF EXISTS pitr_keep, pitr_dropped, verify_me")
    PITR["aside"] = set(host.run("ls -d %s.before-restore-*", DATA).stdout.split())
    PITR["timeline"] = int(psql(host, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)", db="postgres"), 16)
    psql(host, "CREATE TABLE pitr_keep AS SELECT g AS id FROM generate_series(1, 1000) g")
    psql(host, "CREATE TABLE pitr_dropped AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50) g")
    PITR["dropped"] = psql(host, "SELECT md5(string_agg(id::text || v, ',' ORDER BY id)) FROM pitr_dropped")
    time.sleep(1)
    target = psql(host, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1)
    psql(host, "INSERT INTO pitr_keep SELECT g FROM generate_series(1001, 1500) g")
    psql(host, "DROP TABLE pitr_dropped")
    switch_and_wait_archived(host)
    replica_timelines = {name: checkpoint_timeline(r) for name, r in replicas.items()}

    run = ansible_playbook(str(PROJECT / "playbooks/restore.yml"),
                           {"restore_target_type": "time", "restore_target": target, "restore_confirm": "yes",
                            "restore_target_action": "pause"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "PAUSED at the target" in " ".join(run.stdout.split())

    # in recovery, paused at the target: the state of that moment, readable, not writable
    assert psql(host, "SELECT pg_is_in_recovery()") == "t"
    assert psql(host, "SELECT pg_get_wal_replay_pause_state()", db="postgres") == "paused"
    assert psql(host, "SELECT count(*) FROM pitr_keep") == "1000"
    assert psql(host, "SELECT md5(string_agg(id::text || v, ',' ORDER BY id)) FROM pitr_dropped") == PITR["dropped"]
    write = host.run("runuser -u postgres -- psql -XAtq -d appdb -c %s", "CREATE TABLE written_while_paused (id int)")
    assert write.rc != 0 and "read-only transaction" in write.stderr, write.stderr
    # the replicas were stopped with Patroni (none may take the leader key meanwhile) and left
    # alone: not rewound, not recloned
    for name, r in replicas.items():
        assert not r.service("patroni@15-main").is_running, name
        assert checkpoint_timeline(r) == replica_timelines[name], name
    # the data directory from before is kept aside already
    assert len(set(host.check_output("ls -d %s.before-restore-*", DATA).split()) - PITR["aside"]) == 1


def test_resume_promotes_the_paused_restore(host, ansible_playbook):
    aside_paused = set(host.check_output("ls -d %s.before-restore-*", DATA).split())
    run = ansible_playbook(str(PROJECT / "playbooks/restore.yml"), {"restore_resume": "yes"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

    assert psql(host, "SELECT pg_is_in_recovery()") == "f"
    assert psql(host, "SELECT count(*) FROM pitr_keep") == "1000"
    assert psql(host, "SELECT md5(string_agg(id::text || v, ',' ORDER BY id)) FROM pitr_dropped") == PITR["dropped"]
    # a new timeline, and the previous data directory kept aside rather than deleted (the resume
    # itself moved nothing)
    assert int(psql(host, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)", db="postgres"), 16) > PITR["timeline"]
    aside = set(host.check_output("ls -d %s.before-restore-*", DATA).split())
    assert aside == aside_paused
    new = aside - PITR["aside"]
    assert len(new) == 1 and host.file(f"{new.pop()}/PG_VERSION").exists


def checkpoint_timeline(server) -> str:
    """The timeline of the latest checkpoint, read from the control file (also with the server stopped)."""
    out = server.check_output("LC_ALL=C /usr/lib/postgresql/15/bin/pg_controldata -D %s", DATA)
    return re.search(r"Latest checkpoint's TimeLineID:\s+(\d+)", out).group(1)


def test_both_replicas_follow_the_restored_primary_onto_its_timeline(host, replicas):
    # restore.yml's last play hands the restored primary back to Patroni, then starts each replica's
    # member: Patroni rewinds it (or clones it afresh) onto the new timeline
    timeline = int(psql(host, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)", db="postgres"), 16)
    # the restore's recovery target stayed behind on none of them (else a replica would stop, and
    # promote itself, at the first commit newer than the target)
    assert "recovery_target" not in host.file(f"{DATA}/postgresql.auto.conf").content_string
    for name, replica in replicas.items():
        def streaming(replica=replica):
            return psql(replica, "SELECT status || ' ' || received_tli FROM pg_stat_wal_receiver", db="postgres")

        assert wait_until(lambda: streaming() == f"streaming {timeline}", 60, interval=1), (name, streaming())
        assert psql(replica, "SELECT pg_is_in_recovery()") == "t", name
        assert psql(replica, "SELECT current_setting('recovery_target_time')", db="postgres") == "", name
        # the replica holds the restored state, not the one it had streamed before the restore
        for query in ("SELECT count(*) FROM pitr_keep",
                      "SELECT md5(string_agg(id::text || v, ',' ORDER BY id)) FROM pitr_dropped"):
            assert psql(replica, query) == psql(host, query), (name, query)
        assert psql(replica, "SELECT count(*) FROM pitr_keep") == "1000", name
    # and what the restored primary commits next reaches them (the commit itself waits for the
    # synchronous standby, so it returning says pg2 has it)
    psql(host, "CREATE TABLE after_restore AS SELECT g AS id FROM generate_series(1, 7) g")
    lsn = psql(host, "SELECT pg_current_wal_lsn()", db="postgres")
    for name, replica in replicas.items():
        assert wait_until(lambda replica=replica: psql(
            replica, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'", db="postgres") == "t", 30), name
        assert psql(replica, "SELECT count(*) FROM after_restore") == "7", name
    psql(host, "DROP TABLE after_restore")


def test_resume_refuses_when_no_restore_is_paused(host, ansible_playbook):
    # pg1 is promoted and its recovery settings are gone: there is nothing to resume
    started = host.check_output("systemctl show -p ActiveEnterTimestampMonotonic --value patroni@15-main")
    run = ansible_playbook(str(PROJECT / "playbooks/restore.yml"), {"restore_resume": "yes"})
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0
    assert ("Nothing to resume on pg1 (restore_resume, pgbackrest_restore_resume): it is not in recovery and "
            "postgresql.auto.conf holds no recovery settings") in out
    assert psql(host, "SELECT pg_is_in_recovery()") == "f"
    assert host.check_output("systemctl show -p ActiveEnterTimestampMonotonic --value patroni@15-main") == started


def test_archiving_continues_after_the_restore(host):
    pgbackrest(host, "check")
    switch_and_wait_archived(host)
    assert json.loads(host.check_output("pgbackrest-status || true"))["archiver"]["failing"] is False


def test_verification_job_restores_and_reports_its_time(host, repo, replica):
    psql(host, "CREATE TABLE verify_me AS SELECT g AS id FROM generate_series(1, 500) g")
    assert backup(host, repo, "full")["type"] == "full"
    assert replica.run("systemctl start pgbackrest-verify.service").rc == 0
    status = json.loads(replica.file("/var/lib/pgbackrest-verify/status.json").content_string)
    assert status["result"] == "ok", status
    assert status["host"] == "pg3"
    assert status["restore_seconds"] > 0
    assert {c["name"]: c["result"] for c in status["checks"]} == {"pg_amcheck": "ok", "rows appdb.public.verify_me": "ok"}
    assert [c["rows"] for c in status["checks"] if "rows" in c] == [500]
    # the result is reported where it ran, and only there
    assert json.loads(replica.check_output("pgbackrest-status"))["verification"]["backup_label"] == status["backup_label"]
    assert "verification" not in json.loads(host.check_output("pgbackrest-status || true"))


def test_verification_job_fails_loudly_on_a_corrupted_backup(host, repo, replica):
    label = info(host)["backup"][-1]["label"]
    victim = repo.check_output(
        "find %s/backup/main/%s/pg_data/base -type f -size +8k -printf '%%s %%p\\n' | sort -n | tail -1 | cut -d' ' -f2",
        REPO, label)
    repo.check_output("cp -p %s /tmp/victim.orig", victim)
    try:
        repo.check_output("dd if=/dev/urandom of=%s bs=1 count=256 seek=4096 conv=notrunc status=none", victim)
        run = replica.run("systemctl start pgbackrest-verify.service")
        assert run.rc != 0
        status = json.loads(replica.file("/var/lib/pgbackrest-verify/status.json").content_string)
        # the restore of that very backup is what fails (pgBackRest finds the file's checksum, or
        # its compressed format, wrong), before any check of the restored copy
        assert status["result"] == "failed" and status["backup_label"] == label, status
        assert status["error"].startswith("pgbackrest restore exited "), status
        assert status["checks"] == [], status
        assert "RESTORE VERIFICATION FAILED" in replica.check_output("journalctl -u pgbackrest-verify.service --no-pager -n 50")
        health = replica.run("pgbackrest-status")
        assert health.rc == 1
        assert any(p.startswith("verification") for p in json.loads(health.stdout)["problems"])
    finally:
        repo.check_output("cp -p /tmp/victim.orig %s", victim)
    assert replica.run("systemctl start pgbackrest-verify.service").rc == 0


def test_the_verification_moves_to_the_host_named_and_leaves_the_others(replicas, ansible_playbook):
    pg2, pg3 = replicas["pg2"], replicas["pg3"]
    scratch_and_status = ("/var/lib/pgbackrest-verify/data", "/var/lib/pgbackrest-verify/status.json")
    pg3.check_output("install -d -o postgres -g postgres -m 0700 %s", scratch_and_status[0])  # a failed run's copy

    def present(server):
        return [p for p in VERIFY_UNITS + scratch_and_status if server.file(p).exists]

    def schedule(extra_vars, check=False):
        run = ansible_playbook(str(PROJECT / "playbooks/backup.yml"), extra_vars, check=check,
                               limit="pg2,pg3", tags="pgbackrest_schedule")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        return run

    try:
        # --check reports the move and changes nothing
        run = schedule({"pgbackrest_verify_host": "pg2"}, check=True)
        assert recap_changed(run.stdout) > 0
        assert present(pg2) == []
        assert present(pg3) == list(VERIFY_UNITS + scratch_and_status) and pg3.service("pgbackrest-verify.timer").is_running
        # moved: the timer runs on pg2; on pg3 it is stopped, disabled and gone with the rest
        run = schedule({"pgbackrest_verify_host": "pg2"})
        assert pg2.service("pgbackrest-verify.timer").is_enabled and pg2.service("pgbackrest-verify.timer").is_running
        assert present(pg2) == list(VERIFY_UNITS)
        assert present(pg3) == []
        assert pg3.run("systemctl is-active pgbackrest-verify.timer").stdout.strip() != "active"
    finally:
        # back to the inventory's choice: pg3 again, and nothing left on pg2
        schedule(None)
    assert pg3.service("pgbackrest-verify.timer").is_enabled and pg3.service("pgbackrest-verify.timer").is_running
    assert present(pg2) == []


def test_retention_expires_full_backups_older_than_35_days(host, repo):
    """The stanza's own retention (time based, 35 days), applied by `pgbackrest expire` on the
    repository host with nothing overridden. 35 days cannot pass in a test, so that one command
    runs with its clock frozen (faketime, installed by the scenario's prepare.yml) at the moment
    the newest backup is exactly 35 days old: the full backup before it is then older than the
    window and stays, as the one that keeps the whole window restorable; every backup before that
    one expires, with the WAL older than what is kept. A window other than 35 days, or a count
    based one, keeps or expires other backups."""
    fulls = [b for b in info(host)["backup"] if b["type"] == "full"]
    # the suite's earlier full backups (the converge's, the verification test's)
    assert len(fulls) >= 2, [b["label"] for b in fulls]
    newest = backup(host, repo, "full")
    assert newest["type"] == "full"
    anchor = fulls[-1]
    assert anchor["timestamp"]["stop"] < newest["timestamp"]["stop"], (anchor, newest)
    before = [b["label"] for b in info(host)["backup"]]
    expired = [label for label in before if label < anchor["label"]]
    kept = [label for label in before if label >= anchor["label"]]
    assert expired and kept[-1] == newest["label"], before

    moment = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(newest["timestamp"]["stop"] + 35 * 86400))
    # only the wall clock is frozen (the monotonic one runs, for any wait pgBackRest makes)
    out = repo.check_output("runuser -u pgbackrest -- env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 timeout 120 "
                            "faketime -f %s pgbackrest --stanza=main --log-level-console=info expire", moment)
    assert "repo1: expire time-based backup " in out, out
    for label in expired:
        assert f"repo1: remove expired backup {label}" in out, out

    after = info(host)
    assert [b["label"] for b in after["backup"]] == kept
    listing = pgbackrest_repo(repo, "repo-ls", "backup/main")
    assert not [label for label in expired if label in listing], listing
    # WAL older than the oldest kept backup is gone with it; the WAL it needs is kept
    assert after["archive"][0]["min"] == anchor["archive"]["start"]


def test_logical_dumps_go_encrypted_into_the_repository_and_restore(host, repo):
    assert host.run("systemctl start pgbackrest-dump.service").rc == 0
    status = json.loads(host.file("/var/lib/pgbackrest-dump/status.json").content_string)
    assert status["result"] == "ok" and status["encrypted"] is True, status
    dumped = {d["database"]: d["file"] for d in status["dumps"]}
    assert {"appdb", "postgres"} <= set(dumped) and dumped["appdb"].endswith(".dump.enc")

    # on the repository host, encrypted: openssl's salted header, not a pg_dump archive
    stored = f"{DUMPS}/appdb/{dumped['appdb']}"
    assert repo.file(stored).user == "pgbackrest"
    assert repo.check_output("head -c 8 %s", stored) == "Salted__"
    # and not on the server
    assert host.run("find /var /tmp /root /srv /home -name %s", dumped["appdb"] + "*").stdout == ""
    assert not host.file("/var/backups/postgresql/dumps").exists
    # the passphrase is in a root-only file, not in the job's command, unit or status
    passfile = host.file("/etc/pgbackrest/dump.pass")
    assert (passfile.user, passfile.group, passfile.mode) == ("root", "root", 0o600)
    for path in ("/usr/local/sbin/pgbackrest-dump", "/etc/systemd/system/pgbackrest-dump.service",
                 "/var/lib/pgbackrest-dump/status.json"):
        assert PASSPHRASE not in host.file(path).content_string, path

    # decrypted and restored into a fresh database: the same rows as the original
    psql(host, "DROP DATABASE IF EXISTS appdb_check", db="postgres")
    psql(host, "CREATE DATABASE appdb_check", db="postgres")
    # (an empty or undecryptable stream makes pg_restore fail: "input file is too short")
    host.check_output("pgbackrest-dump get %s | runuser -u postgres -- pg_restore --exit-on-error -d appdb_check",
                      dumped["appdb"])
    counts = ("SELECT string_agg(c.relname || '=' || (xpath('/row/n/text()', query_to_xml("
              "format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text, ',' "
              "ORDER BY c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE c.relkind = 'r' AND n.nspname = 'public'")
    original = psql(host, counts)
    assert "pitr_keep=1000" in original and "verify_me=500" in original
    assert psql(host, counts, db="appdb_check") == original
    psql(host, "DROP DATABASE appdb_check", db="postgres")


def test_a_failing_dump_leaves_no_dump_and_never_costs_the_newest_good_ones(host, repo):
    def stamp(days_ago):
        moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
        return moment.strftime("%Y%m%dT%H%M%SZ")

    def plant(db, name, touched=None):
        repo.check_output("install -d -o pgbackrest -g pgbackrest -m 0750 %s/%s"
                          " && install -o pgbackrest -g pgbackrest -m 0640 /dev/null %s/%s/%s", DUMPS, db, DUMPS, db, name)
        if touched:
            repo.check_output("touch -d %s %s/%s/%s", touched, DUMPS, db, name)
        return name

    def stored(db):
        return set(repo.check_output("ls %s/%s", DUMPS, db).split())

    for db in ("dump_keep", "dump_breaker"):
        psql(host, f"DROP DATABASE IF EXISTS {db}", db="postgres")
        psql(host, f"CREATE DATABASE {db}", db="postgres")
    # pg_dump of dump_breaker fails half-way: its table of contents is written when COPY meets an
    # enum value whose label is gone
    psql(host, "CREATE TYPE mood AS ENUM ('ok', 'gone'); CREATE TABLE early AS SELECT g FROM generate_series(1, 10000) g;"
               " CREATE TABLE t (m mood); INSERT INTO t VALUES ('ok'), ('gone');"
               " DELETE FROM pg_enum WHERE enumlabel = 'gone'", db="dump_breaker")
    # dump_keep: eight good dumps of 35 to 42 days ago (older than the 30 days), an upload left
    # open two days ago, a file that is no dump; dump_breaker: three good dumps, 40-60 days old
    keep = {age: plant("dump_keep", f"dump_keep_{stamp(age)}.dump.enc") for age in range(35, 43)}
    stale = plant("dump_keep", f"dump_keep_{stamp(3)}.dump.enc.pgbackrest.tmp", touched="2 days ago")
    plant("dump_keep", "notes.txt")
    breaker = {plant("dump_breaker", f"dump_breaker_{stamp(age)}.dump.enc") for age in (40, 50, 60)}
    try:
        run = host.run("pgbackrest-dump run dump_keep dump_breaker")
        assert run.rc == 1, run.stdout + run.stderr
        assert "FAILED to dump dump_breaker: pg_dump exited 1" in run.stderr
        assert "invalid internal value for enum" in run.stderr
        status = json.loads(host.file("/var/lib/pgbackrest-dump/status.json").content_string)
        assert status["result"] == "failed" and status["databases_failed"] == ["dump_breaker"]
        new = {d["file"] for d in status["dumps"]}
        assert [d["database"] for d in status["dumps"]] == ["dump_keep"]

        # the failed dump left no dump (at most pgBackRest's upload that was never closed, which a
        # later run removes); its three good dumps stay, older than 30 days as they are (3 is fewer
        # than the newest 7 kept)
        left = stored("dump_breaker")
        assert {n for n in left if n.endswith(".dump.enc")} == breaker
        assert all(n.endswith(".dump.enc.pgbackrest.tmp") for n in left - breaker), left
        # the retention is the repository host's, after its next backup (pgBackRest 2.45 cannot
        # remove a file through the TLS server): nothing is removed yet
        assert "the repository host applies the dumps' retention" in run.stdout
        assert {age for age, name in keep.items() if name in stored("dump_keep")} == set(range(35, 43))
        backup_job = repo.run("systemctl start pgbackrest-backup@incr.service")
        assert backup_job.rc == 0, repo.check_output("journalctl -u pgbackrest-backup@incr.service --no-pager -n 20")
        journal = repo.check_output("journalctl -u pgbackrest-backup@incr.service --no-pager -n 30")
        # dump_keep: today's dump and the six newest old ones are the newest 7 and stay; those of
        # 41 and 42 days are older than 30 days and beyond the 7: removed, with the stale upload
        assert stored("dump_keep") == new | {keep[age] for age in range(35, 41)} | {"notes.txt"}
        removed = sorted(line.split("removed ", 1)[1] for line in journal.splitlines() if " removed dump/main/dump_keep/" in line)
        assert removed == sorted(f"dump/main/dump_keep/{name}" for name in (keep[41], keep[42], stale)), journal
        assert {n for n in stored("dump_breaker") if n.endswith(".dump.enc")} == breaker
    finally:
        for db in ("dump_keep", "dump_breaker"):
            psql(host, f"DROP DATABASE IF EXISTS {db}", db="postgres")
            repo.check_output("rm -rf %s/%s", DUMPS, db)
        # a good run again, for the suites after this one
        assert host.run("pgbackrest-dump run postgres").rc == 0


@pytest.mark.parametrize(
    "bad, variable",
    [
        ({"pgbackrest_cipher_pass": ""}, "pgbackrest_cipher_pass"),
        ({"pgbackrest_compress_type": "gz"}, "pgbackrest_compress_type"),
        ({"pgbackrest_archive_timeout": 7200}, "pgbackrest_archive_timeout"),
        # a repository host that is not a host of group backup
        ({"pgbackrest_repo_host": "pg1"}, "pgbackrest_repo_host is pg1"),
        # pgBackRest 2.45 cannot match an IP address against a certificate
        ({"pgbackrest_host_address": "192.0.2.7"}, "pgbackrest_host_address is an IP address"),
        # with a replica, a repository on each server's own disk (the preflight refuses it too)
        ({"pgbackrest_repo_host": ""}, "pgbackrest_repo_type is posix and pgbackrest_repo_host is empty"),
        # the verification runs on a PostgreSQL server: not on a client, nor on the repository host
        ({"pgbackrest_verify_host": "pg-client"},
         "pgbackrest_verify_host is pg-client on pg1: allowed values are an inventory host of group postgresql (pg1, pg2, pg3)"),
        ({"pgbackrest_verify_host": "backup-repo"}, "pgbackrest_verify_host is backup-repo on pg1: allowed values are"),
        # the newest good dumps are never all removed
        ({"pgbackrest_dump_keep_min": 0}, "pgbackrest_dump_keep_min (0, at least 1"),
    ],
)
def test_bad_input_fails_before_any_change(host, ansible_playbook, bad, variable):
    before = host.file("/etc/pgbackrest/pgbackrest.conf").md5sum
    run = ansible_playbook(str(PROJECT / "playbooks/backup.yml"), bad)
    assert run.returncode != 0
    assert variable in run.stdout + run.stderr
    assert host.file("/etc/pgbackrest/pgbackrest.conf").md5sum == before
