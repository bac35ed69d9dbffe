"""redis_cluster: what an operator would check on the cluster, through TLS and ACLs."""

import os

import pytest
import testinfra
import testinfra.utils.ansible_runner

from conftest import wait_until

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("redis")
PORTS = [6380, 6381, 6382, 6383]
CA = "/etc/redis/tls/ca.crt"


def cli(host, port, *args, user="admin", password_var="redis_admin_password", stdin=None, target="127.0.0.1"):
    variables = host.ansible.get_variables()
    password = variables[password_var] if password_var else ""
    command = "REDISCLI_AUTH={} redis-cli --tls --cacert {} --user {} --no-auth-warning -h {} -p {} {}".format(
        _q(password), CA, _q(user), target, port, " ".join(_q(a) for a in args))
    if stdin is not None:
        command = "printf '%s\\n' {} | {}".format(" ".join(_q(line) for line in stdin), command)
    return host.run(command)


def cluster_nodes(text: str) -> dict:
    """CLUSTER NODES output -> node id: ip, port, flags, master (id or '-'), slots [(first, last)]."""
    nodes = {}
    for line in text.replace("\r", "").splitlines():
        fields = line.split()
        if not fields:
            continue
        ip, port = fields[1].split("@")[0].rsplit(":", 1)
        slots = []
        for item in fields[8:]:
            if not item.startswith("["):  # [slot->-id] / [slot-<-id]: a slot in migration
                first, _dash, last = item.partition("-")
                slots.append((int(first), int(last or first)))
        nodes[fields[0]] = {"ip": ip, "port": int(port), "flags": fields[2], "master": fields[3], "slots": slots}
    return nodes


def slot_owner(nodes: dict, slot: int) -> str:
    """Id of the primary that serves `slot`."""
    return next(i for i, n in nodes.items() if "master" in n["flags"] and any(a <= slot <= b for a, b in n["slots"]))


def _q(text):
    return "'" + str(text).replace("'", "'\\''") + "'"


def info(text):
    return dict(line.split(":", 1) for line in text.replace("\r", "").splitlines() if ":" in line and not line.startswith("#"))


@pytest.mark.parametrize("port", PORTS)
def test_cluster_ok_on_every_node(host, port):
    result = cli(host, port, "CLUSTER", "INFO")
    assert result.rc == 0, result.stderr
    state = info(result.stdout)
    assert state["cluster_state"] == "ok"
    assert state["cluster_slots_assigned"] == "16384"
    assert state["cluster_known_nodes"] == "12"
    assert state["cluster_size"] == "6"


def test_six_primaries_each_with_one_replica_placed_by_the_rules(host):
    if host.backend.get_hostname() != "redis-1":
        pytest.skip("once per cluster")
    by_id = cluster_nodes(cli(host, 6380, "CLUSTER", "NODES").stdout)
    zone_of_ip = {}
    for name in testinfra_hosts:
        other = host.get_host("ansible://" + name, ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
        ip = other.check_output("hostname -I").split()[0]
        zone_of_ip[ip] = other.ansible.get_variables()["redis_zone"]
    primaries = {i: n for i, n in by_id.items() if "master" in n["flags"]}
    replicas = [n for n in by_id.values() if "slave" in n["flags"]]
    assert len(primaries) == 6 and len(replicas) == 6
    assert sorted(r["master"] for r in replicas) == sorted(primaries)
    for replica in replicas:
        primary = primaries[replica["master"]]
        assert replica["ip"] != primary["ip"], "replica on its primary's host"
        assert zone_of_ip[replica["ip"]] != zone_of_ip[primary["ip"]], "replica in its primary's zone"
    zones = [zone_of_ip[p["ip"]] for p in primaries.values()]
    assert all(2 * zones.count(z) < len(zones) for z in zones), zones


def _redis_log_lines(host, port, text) -> int:
    """How many lines of the instance's own log hold `text`."""
    return int(host.check_output("grep -cF -- %s /var/log/redis/redis-server-%s.log || true", text, str(port)))


def test_plain_text_is_refused(host):
    # The control: the same PING over TLS is answered, so the port is a live Redis.
    assert cli(host, 6380, "PING").stdout.strip() == "PONG"
    refusals = _redis_log_lines(host, 6380, "SSL routines::wrong version number")
    result = host.run("timeout 5 redis-cli -h 127.0.0.1 -p 6380 PING")
    # Redis reads the plain-text command as a TLS record, refuses it and drops the connection.
    assert (result.rc, result.stdout.strip()) == (1, ""), result.stdout
    assert "Error: Connection reset by peer" in result.stderr + result.stdout, result.stderr
    assert wait_until(lambda: _redis_log_lines(host, 6380, "SSL routines::wrong version number") > refusals, 10)
    assert not host.socket("tcp://0.0.0.0:6379").is_listening


# The same client for every version: OpenSSL's own floor lowered (SECLEVEL=0 allows TLS 1.0/1.1 and
# their SHA-1 signatures), so that the client really offers the version it is given and only the
# server can refuse it. Without it, Debian 12's OpenSSL refuses TLS 1.1 itself.
S_CLIENT = "echo | timeout 5 openssl s_client -connect 127.0.0.1:6380 -CAfile {} -cipher DEFAULT:@SECLEVEL=0 {}"


def test_tls_1_1_is_refused_and_1_2_accepted(host):
    refusals = _redis_log_lines(host, 6380, "SSL routines::unsupported protocol")
    old = host.run(S_CLIENT.format(CA, "-tls1_1"))
    assert old.rc == 1
    assert "Cipher is (NONE)" in old.stdout, old.stdout
    # the server's alert 70 (protocol_version), not a refusal by the client ("no protocols available")
    assert "tlsv1 alert protocol version" in old.stderr and "SSL alert number 70" in old.stderr, old.stderr
    # ...and the server says why
    assert wait_until(lambda: _redis_log_lines(host, 6380, "SSL routines::unsupported protocol") > refusals, 10)
    for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        new = host.run(S_CLIENT.format(CA, flag))
        assert new.rc == 0, new.stderr
        assert f"New, {version}, Cipher is " in new.stdout, new.stdout
        assert "Verify return code: 0 (ok)" in new.stdout


def test_commands_without_authentication_are_refused(host):
    result = host.run("redis-cli --tls --cacert %s -h 127.0.0.1 -p 6380 GET ai:x", CA)
    assert "NOAUTH" in result.stdout + result.stderr


# redis_memory_plan's guarantee, worked out by hand for what molecule.yml pins: redis_memory_mb 512
# for the 4 instances of each host (6 shards x 2 / 3 hosts), RDB, one replica each, the role's default
# reserves (10 % non-cache, 10 % fragmentation) and one fork at a time copying all its maxmemory:
#   share = 512 / 4 = 128 MB; non-cache reserve 128 * 10 % = 12 (maxmemory-clients: half, 6);
#   fragmentation 12; replica output buffer max(16, 128 / 32) = 16, soft 16 / 4 = 4;
#   backlog 128 / 64 = 2  -> each instance needs 12 + 12 + 16 + 2 = 42 MB besides maxmemory
#   4 * (maxmemory + 42) + maxmemory <= 512  ->  maxmemory <= 344 / 5 = 68.8  ->  68 MB
#   (4 * 110 + 68 = 508 fits; 69 would need 4 * 111 + 69 = 513)
MIB = 1024 * 1024
PLANNED = {
    "maxmemory": str(68 * MIB),
    "maxmemory-clients": str(6 * MIB),
    "repl-backlog-size": str(2 * MIB),
    "maxmemory-policy": "allkeys-lru",
}
REPLICA_BUFFER = "slave %d %d 60" % (16 * MIB, 4 * MIB)  # CONFIG GET names the replica class "slave"


def test_maxmemory_follows_the_plan(host):
    assert host.ansible.get_variables()["redis_memory_mb"] == 512  # the plan worked out above
    for port in PORTS:
        lines = cli(host, port, "CONFIG", "GET", *PLANNED, "client-output-buffer-limit").stdout
        values = lines.replace("\r", "").splitlines()
        shown = dict(zip(values[::2], values[1::2]))
        assert {name: shown.get(name) for name in PLANNED} == PLANNED, (port, shown)
        assert REPLICA_BUFFER in shown["client-output-buffer-limit"], (port, shown)


def _subscribed(host, path) -> bool:
    """Whether the PSUBSCRIBE writing to `path` has had the server's confirmation ("psubscribe",
    the pattern, the count), which Redis sends once the subscription is registered."""
    return host.file(path).exists and host.file(path).content_string.startswith("psubscribe\n")


def test_application_user_pubsub_through_another_node(host):
    if host.backend.get_hostname() != "redis-1":
        pytest.skip("once per cluster")
    other_ip = host.get_host("ansible://redis-2", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]).check_output(
        "hostname -I").split()[0]
    app = ("env REDISCLI_AUTH=molecule-ai-service-secret-0005 redis-cli --tls --cacert {} --user ai-service "
           "--no-auth-warning".format(CA))
    host.run("rm -f /tmp/sub.out; (timeout 8 {} -h 127.0.0.1 -p 6380 PSUBSCRIBE 'ai:job:status:*' > /tmp/sub.out 2>&1 &)"
             .format(app))
    # redis-cli prints the server's confirmation once the subscription is in place
    assert wait_until(lambda: _subscribed(host, "/tmp/sub.out"), 5), host.file("/tmp/sub.out").content_string
    published = host.run("{} -h {} -p 6381 PUBLISH ai:job:status:42 processing".format(app, other_ip))
    assert published.rc == 0, published.stderr
    assert wait_until(lambda: "processing" in host.file("/tmp/sub.out").content_string, 5)
    assert "pmessage\nai:job:status:*\nai:job:status:42\nprocessing" in host.file("/tmp/sub.out").content_string
    denied = host.run("{} -h 127.0.0.1 -p 6380 PUBLISH other:channel x".format(app))
    assert "NOPERM" in denied.stdout + denied.stderr
    denied_sub = host.run("timeout 3 {} -h 127.0.0.1 -p 6380 SUBSCRIBE other:channel".format(app))
    assert "NOPERM" in denied_sub.stdout + denied_sub.stderr


def test_keyspace_events_at_the_owning_primary(host):
    if host.backend.get_hostname() != "redis-1":
        pytest.skip("once per cluster")
    key = "ai:job:status:keyspace-test"
    slot = int(cli(host, 6380, "CLUSTER", "KEYSLOT", key).stdout.strip())
    nodes = cluster_nodes(cli(host, 6380, "CLUSTER", "NODES").stdout)
    owner = nodes[slot_owner(nodes, slot)]
    ip, port = owner["ip"], owner["port"]
    admin = "env REDISCLI_AUTH=molecule-admin-secret-0001 redis-cli --tls --cacert {} --user admin --no-auth-warning".format(CA)
    host.run("rm -f /tmp/ev.out; (timeout 8 {} -h {} -p {} PSUBSCRIBE '__keyevent@0__:*' > /tmp/ev.out 2>&1 &)"
             .format(admin, ip, port))
    assert wait_until(lambda: _subscribed(host, "/tmp/ev.out"), 5), host.file("/tmp/ev.out").content_string
    assert host.run("{} -c -h {} -p {} SET {} v PX 300".format(admin, ip, port, key)).rc == 0
    assert wait_until(lambda: "__keyevent@0__:expired" in host.file("/tmp/ev.out").content_string, 6)
    out = host.file("/tmp/ev.out").content_string
    assert "__keyevent@0__:set" in out
    assert "__keyevent@0__:expired" in out


def test_backup_four_times_keeps_three_valid_snapshots(host):
    for _attempt in range(4):
        result = host.run("systemctl start redis-backup.service")
        assert result.rc == 0, host.run("journalctl -u redis-backup --no-pager -n 30").stdout
    assert host.service("redis-backup.timer").is_enabled
    snapshotted = 0
    for port in PORTS:
        files = host.run("ls /var/backups/redis/%s/", str(port)).stdout.split()
        role = info(cli(host, port, "INFO", "replication").stdout)["role"]
        if role == "master":
            continue  # its replica is snapshotted (redis_backup_prefer_replicas)
        assert len(files) == 3, (port, files)
        for name in files:
            assert host.run("redis-check-rdb /var/backups/redis/%s/%s", str(port), name).rc == 0
        snapshotted += 1
    assert snapshotted == 2


BACKUP_HOST = "redis-3"
SSH = ("ssh -i /etc/redis/backup-ssh/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes"
       " -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/redis/backup-ssh/known_hosts")


def test_snapshots_are_mirrored_to_the_backup_host(host):
    backup = testinfra.get_host("ansible://{}?ansible_inventory={}".format(BACKUP_HOST, os.environ["MOLECULE_INVENTORY_FILE"]))
    name = host.backend.get_hostname()
    listing = "cd {} && find . -name 'dump-*.rdb' -type f | sort | xargs -r sha256sum"
    local = host.check_output(listing.format("/var/backups/redis"))
    assert len(local.splitlines()) == 3 * 2, local  # the 2 replicas snapshotted on this host, 3 each
    # The same files, byte for byte, in this host's directory on the backup host.
    assert backup.check_output(listing.format("/var/backups/redis-copies/" + name)) == local


def test_the_copy_key_only_writes_its_own_directory(host):
    # No shell, no other command: only rrsync, write-only.
    shell = host.run("runuser -u redis -- {} redis-backup@{} cat /etc/hostname".format(SSH, BACKUP_HOST))
    # the key is accepted, and its forced command (rrsync) refuses anything but rsync
    assert shell.rc != 0 and BACKUP_HOST not in shell.stdout, shell.stdout
    assert "rrsync error: SSH_ORIGINAL_COMMAND does not run rsync" in shell.stderr, shell.stderr
    read = host.run("runuser -u redis -- rsync -a -e {} redis-backup@{}: /tmp/readback/".format(_q(SSH), BACKUP_HOST))
    assert read.rc != 0 and "write-only" in read.stderr, read.stderr


@pytest.mark.parametrize("bad", [{"redis_backup_host": "redis-9"},
                                 {"redis_backup_host": "redis-3", "redis_backup_remote": "x@y:/z/"}])
def test_a_wrong_backup_host_fails_before_any_change(ansible_playbook, bad):
    host = testinfra.get_host("ansible://redis-1?ansible_inventory={}".format(os.environ["MOLECULE_INVENTORY_FILE"]))
    before = host.file("/etc/redis/backup-ssh/known_hosts").md5sum
    run = ansible_playbook("converge.yml", bad)
    assert run.returncode != 0
    assert "redis_backup_host is " + bad["redis_backup_host"] in run.stdout + run.stderr
    assert host.file("/etc/redis/backup-ssh/known_hosts").md5sum == before
