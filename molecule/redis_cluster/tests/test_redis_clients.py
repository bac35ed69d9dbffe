"""redis_cluster: the application user through the cluster clients applications use.

redis-py 4.3.4 (the code of Debian 12's python3-redis 4.3.4-3: its redis/ package is PyPI's 4.3.4
byte for byte), redis-py 8.2.0 and ioredis 5.9.3 each connect as ai-service with TLS verified
against the scenario's CA, read the slot map, name their connections, ask INFO, write and read
keys of every shard, read them again from the replicas (READONLY), and are refused commands of
@dangerous with NOPERM. What Jedis and Lettuce send (CLUSTER SLOTS/SHARDS/NODES, INFO, CLIENT
SETNAME, READONLY) is checked command by command with redis-cli.

Where the clients run: on the controller (the machine that runs pytest), the way an application
host reaches the cluster - at the addresses the cluster announces. The controller installs them
once per run from PyPI (pip --target) and the npm registry (npm --prefix) into
$ONPREM_CACHE_DIR/redis-clients, kept between runs; the test image only has Debian's mirror.
ioredis 5, not 6: it runs on Debian 12's Node.js 18 as well as on newer ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import testinfra

from conftest import wait_until

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
CA = "/etc/redis/tls/ca.crt"
PORT = 6380
CLIENT_DIR = Path(__file__).resolve().parent / "clients"
# id: (runtime, package spec, version the client must report)
CLIENTS = {
    "redis-py-4.3.4": ("python", "redis==4.3.4", "4.3.4"),
    "redis-py-8.2.0": ("python", "redis==8.2.0", "8.2.0"),
    "ioredis-5.9.3": ("node", "ioredis@5.9.3", "5.9.3"),
}
# Commands of @dangerous the clients send, harmless had they been accepted (the value set is the
# current one); the destructive ones are asked with ACL DRYRUN below.
REFUSED_THROUGH_CLIENTS = {
    "config|set": ["CONFIG", "SET", "maxmemory-samples", "{samples}"],
    "client|list": ["CLIENT", "LIST"],
    "keys": ["KEYS", "ai:*"],
}


def _host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def _q(text) -> str:
    return "'" + str(text).replace("'", "'\\''") + "'"


def redis_cli(host, *args, user: str, password: str, target: str = "127.0.0.1", port: int = PORT,
              stdin: list[str] | None = None, cluster: bool = False):
    """redis-cli on `host` over TLS; the password through REDISCLI_AUTH, never the command line."""
    command = "REDISCLI_AUTH={} redis-cli --tls --cacert {} --user {} --no-auth-warning {}-h {} -p {} {}".format(
        _q(password), CA, _q(user), "-c " if cluster else "", target, port, " ".join(_q(a) for a in args))
    if stdin is not None:
        command = "printf '%s\\n' {} | {}".format(" ".join(_q(line) for line in stdin), command)
    return host.run(command)


@pytest.fixture(scope="module")
def redis1():
    return _host("redis-1")


@pytest.fixture(scope="module")
def secrets(redis1):
    variables = redis1.ansible.get_variables()
    app = next(u for u in variables["redis_users"] if u["name"] == "ai-service")
    return {"admin": variables["redis_admin_password"], "app": app["password"]}


@pytest.fixture(scope="module")
def admin(redis1, secrets):
    def run(*args, **kwargs):
        result = redis_cli(redis1, *args, user="admin", password=secrets["admin"], **kwargs)
        assert result.rc == 0, result.stderr
        return result.stdout
    return run


@pytest.fixture(scope="module")
def topology(admin):
    """From CLUSTER NODES: the primaries as ip:port, the slot ranges of each, a replica of each."""
    primaries, replicas = {}, {}
    for line in admin("CLUSTER", "NODES").replace("\r", "").splitlines():
        fields = line.split()
        address = fields[1].split("@")[0]
        if "master" in fields[2]:
            ranges = [tuple(int(x) for x in (f.split("-") * 2)[:2]) for f in fields[8:] if not f.startswith("[")]
            primaries[fields[0]] = {"address": address, "ranges": ranges}
        elif "slave" in fields[2]:
            replicas[fields[3]] = address
    assert len(primaries) == 6 and len(replicas) == 6, (primaries, replicas)
    return {"primaries": primaries, "replica_of": replicas}


@pytest.fixture(scope="module")
def keys(admin, topology):
    """Two keys of the application's namespace in every shard, by the server's own CLUSTER KEYSLOT."""
    candidates = [f"ai:clients:{n}" for n in range(96)]
    slots = [int(s) for s in admin(stdin=[f"CLUSTER KEYSLOT {k}" for k in candidates]).split()]
    chosen, per_primary = [], {}
    for key, slot in zip(candidates, slots):
        owner = next(i for i, p in topology["primaries"].items() if any(a <= slot <= b for a, b in p["ranges"]))
        if per_primary.get(owner, 0) < 2:
            per_primary[owner] = per_primary.get(owner, 0) + 1
            chosen.append(key)
    assert sorted(per_primary.values()) == [2] * 6, per_primary
    return chosen


@pytest.fixture(scope="module")
def installed_clients(tmp_path_factory):
    """Each client in a directory of its own, installed once (a marker file says it is complete)."""
    base = Path(os.environ["ONPREM_CACHE_DIR"]) if os.environ.get("ONPREM_CACHE_DIR") else tmp_path_factory.mktemp("c")
    paths = {}
    for name, (runtime, spec, _version) in CLIENTS.items():
        target = base / "redis-clients" / name
        if not (target / ".installed").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            if runtime == "python":
                command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--target", str(target), spec]
            else:
                npm = shutil.which("npm")
                assert npm, "npm is needed for ioredis (scripts/bootstrap-host.sh installs Debian's nodejs and npm)"
                command = [npm, "install", "--prefix", str(target), "--no-save", "--no-package-lock",
                           "--no-audit", "--no-fund", "--loglevel=error", spec]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            assert done.returncode == 0, f"installing {spec}: {done.stdout}{done.stderr}"
            (target / ".installed").touch()
        paths[name] = target
    return paths


@pytest.fixture(scope="module")
def ca_file(redis1, tmp_path_factory):
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_text(redis1.file(CA).content_string)
    return str(path)


@pytest.mark.parametrize("client", list(CLIENTS))
def test_application_user_through_cluster_client(client, installed_clients, ca_file, redis1, secrets, admin,
                                                 topology, keys):
    runtime, _spec, version = CLIENTS[client]
    samples = admin("CONFIG", "GET", "maxmemory-samples").split()[1]
    name = f"probe-{client}"
    value = f"{client}-{uuid.uuid4().hex[:8]}"
    startup = redis1.check_output("hostname -I").split()[0]
    args = {"host": startup, "port": PORT, "ca": ca_file, "user": "ai-service", "name": name, "keys": keys,
            "value": value,
            "refused": {k: [a.format(samples=samples) for a in v] for k, v in REFUSED_THROUGH_CLIENTS.items()}}
    target = installed_clients[client]
    if runtime == "python":
        command = [sys.executable, "-s", str(CLIENT_DIR / "cluster_client.py"), json.dumps(args)]
        env = dict(os.environ, PYTHONPATH=str(target), REDIS_PASSWORD=secrets["app"])
    else:
        command = ["node", str(CLIENT_DIR / "cluster_client.js"), json.dumps(args)]
        env = dict(os.environ, NODE_PATH=str(target / "node_modules"), REDIS_PASSWORD=secrets["app"])
    run = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, check=False)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    seen = json.loads(run.stdout.splitlines()[-1])

    assert seen["version"] == version  # the client under test, not another one on the path
    # it found the six primaries the cluster has, at the addresses the cluster announces
    assert seen["primaries"] == sorted(p["address"] for p in topology["primaries"].values())
    assert seen["name"] == name  # CLIENT SETNAME on connect, read back with CLIENT GETNAME
    assert seen["redis_version"].startswith("7.0.")  # INFO answers
    assert seen["written"] == {key: value for key in keys}
    assert seen["replica_reads"] == {key: value for key in keys}
    if runtime == "node":
        assert seen["warnings"] == []  # the ready check ran: INFO was not refused
    # ...and on the server, read by the administrator: every key holds what this client wrote
    stored = [line for line in admin(stdin=[f"GET {key}" for key in keys], cluster=True).splitlines()
              if not line.startswith("-> Redirected")]
    assert stored == [value] * len(keys)
    # what @dangerous holds stays refused, for the ACL's reason
    prefix = "NoPermissionError: " if runtime == "python" else "ReplyError: NOPERM "
    assert seen["refused"] == {cmd: f"{prefix}this user has no permissions to run the '{cmd}' command"
                               for cmd in REFUSED_THROUGH_CLIENTS}


def test_what_jedis_and_lettuce_send_is_granted(redis1, secrets):
    # one connection, the way Jedis and Lettuce open theirs and refresh the topology
    commands = ["CLUSTER SLOTS", "CLUSTER SHARDS", "CLUSTER NODES", "CLUSTER INFO", "CLUSTER MYID", "INFO",
                "INFO CLIENTS", "CLIENT SETNAME lettuce-probe", "CLIENT GETNAME", "CLIENT ID", "CLIENT INFO",
                "COMMAND COUNT", "COMMAND DOCS GET", "READONLY", "READWRITE", "PING", "HELLO 3"]
    result = redis_cli(redis1, user="ai-service", password=secrets["app"], stdin=commands)
    assert result.rc == 0, result.stderr
    out = result.stdout.replace("\r", "")
    lines = out.splitlines()
    # redis-cli prints an error reply as its code and message (INFO's errorstat_NOPERM lines are not)
    assert [line for line in lines if line.startswith(("NOPERM", "ERR"))] == [], out
    assert "cluster_state:ok" in lines
    assert "redis_version:7.0." in out and any(line.startswith("connected_clients:") for line in lines)
    assert "lettuce-probe" in lines  # CLIENT GETNAME's answer
    assert any(" name=lettuce-probe " in line and " user=ai-service " in line for line in lines)  # CLIENT INFO's
    assert lines.count("OK") == 3  # CLIENT SETNAME, READONLY, READWRITE
    assert "PONG" in lines


def test_readonly_lets_a_replica_serve_the_application(redis1, secrets, topology, keys):
    app = {"user": "ai-service", "password": secrets["app"]}
    key, value = keys[0], f"replica-{uuid.uuid4().hex[:8]}"
    assert redis_cli(redis1, "SET", key, value, cluster=True, **app).rc == 0
    slot = int(redis_cli(redis1, "CLUSTER", "KEYSLOT", key, **app).stdout)
    owner = next(i for i, p in topology["primaries"].items() if any(a <= slot <= b for a, b in p["ranges"]))
    ip, port = topology["replica_of"][owner].rsplit(":", 1)

    lines: list[str] = []

    def replica_answers():
        result = redis_cli(redis1, target=ip, port=int(port), stdin=[f"GET {key}", "READONLY", f"GET {key}"], **app)
        lines[:] = [line for line in result.stdout.replace("\r", "").splitlines() if line]
        return lines[-1:] == [value]  # replication is asynchronous

    wait_until(replica_answers, 10)
    # without READONLY the replica sends the client to the primary; with it, it answers
    assert lines == [f"MOVED {slot} {topology['primaries'][owner]['address']}", "OK", value]


DANGEROUS = [
    ("FLUSHALL", "flushall"), ("FLUSHDB", "flushdb"), ("DEBUG SLEEP 0", "debug"), ("SHUTDOWN", "shutdown"),
    ("CLUSTER RESET", "cluster|reset"), ("CLUSTER FAILOVER", "cluster|failover"), ("CONFIG REWRITE", "config|rewrite"),
    ("CONFIG GET maxmemory", "config|get"), ("ACL SETUSER x", "acl|setuser"), ("MONITOR", "monitor"),
    ("REPLICAOF NO ONE", "replicaof"), ("BGSAVE", "bgsave"), ("CLIENT KILL ID 1", "client|kill"),
]


def test_the_rest_of_dangerous_stays_refused(admin):
    # ACL DRYRUN: the server's own permission check for the user, without running the command
    answers = admin(stdin=[f"ACL DRYRUN ai-service {command}" for command, _name in DANGEROUS]).replace("\r", "").splitlines()
    assert answers == [f"This user has no permissions to run the '{name}' command" for _command, name in DANGEROUS]
