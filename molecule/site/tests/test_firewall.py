"""The host firewall (role firewall, last in site.yml), probed over the network.

A container on the scenario's network that is in no inventory and no allowed network (the
outsider, 10.213.60.200) gets no answer from any port either host listens on; site-mon (in the
client and admin networks, and the monitoring host) reaches what it uses; site-db, a client but
not an administrator, does not reach Prometheus. A probe is a TCP connect with a 3 s limit: exit 0
is a connection, 124 no answer at all (dropped), anything else an answer such as a reset.
"""

from __future__ import annotations

import subprocess

import pytest
import testinfra

from conftest import inventory_host

testinfra_hosts = ["site-mon"]

IMAGE = "onprem-datastores/debian12-systemd:latest"
OUTSIDER, OUTSIDER_IP = "site-outsider", "10.213.60.200"
DB_IP, MON_IP = "10.213.60.10", "10.213.60.11"
DROPPED, CONNECTED = 124, 0


@pytest.fixture(scope="module")
def db():
    return inventory_host("site-db")


@pytest.fixture(scope="module")
def outsider():
    subprocess.run(["docker", "rm", "-f", OUTSIDER], capture_output=True, check=False)
    subprocess.run(["docker", "run", "-d", "--name", OUTSIDER, "--network", "onprem-site", "--ip", OUTSIDER_IP,
                    "--entrypoint", "sleep", IMAGE, "1200"], capture_output=True, check=True)
    try:
        yield testinfra.get_host("docker://" + OUTSIDER)
    finally:
        subprocess.run(["docker", "rm", "-f", OUTSIDER], capture_output=True, check=False)


def probe(source, address: str, port: int) -> int:
    return probes(source, address, [port])[port]


def probes(source, address: str, ports) -> dict[int, int]:
    """port -> the probe's exit status, the ports probed at the same time (a dropped one takes 3 s)."""
    script = "".join("(timeout 3 bash -c 'exec 3<>/dev/tcp/%s/%d' 2>/dev/null; echo %d $?) & " % (address, int(p), int(p))
                     for p in ports) + "wait"
    out = source.check_output(script)
    return {int(port): int(rc) for port, rc in (line.split() for line in out.splitlines())}


def listening(host) -> list[int]:
    """The TCP ports the host listens on, other than on loopback only."""
    ports = set()
    for line in host.check_output("ss -Hltn").splitlines():
        local = line.split()[3]
        address, port = local.rsplit(":", 1)
        if not address.startswith(("127.", "[::1]")):
            ports.add(int(port))
    return sorted(ports)


def test_every_listening_port_is_dropped_for_a_host_outside_the_inventory(db, host, outsider):
    db_ports, mon_ports = listening(db), listening(host)
    # what the hosts run: PostgreSQL, Redis, the exporters; Prometheus and Alertmanager
    assert {5432, 6380, 9100, 9187, 9121} <= set(db_ports), db_ports
    assert {9090, 9093, 9100} <= set(mon_ports), mon_ports
    answered = {(DB_IP, p): rc for p, rc in probes(outsider, DB_IP, db_ports).items()}
    answered.update({(MON_IP, p): rc for p, rc in probes(outsider, MON_IP, mon_ports).items()})
    assert len(answered) == len(db_ports) + len(mon_ports)
    assert {k: v for k, v in answered.items() if v != DROPPED} == {}


def test_the_outsider_is_on_the_network_and_the_rules_are_what_stops_it(db, outsider):
    """Without the table, the outsider reaches PostgreSQL: the rules, not the network, refused it
    above. The unit's reload loads them back from the file."""
    assert probe(outsider, DB_IP, 5432) == DROPPED
    db.run_expect([0], "nft delete table inet onprem_datastores")
    try:
        assert probe(outsider, DB_IP, 5432) == CONNECTED
    finally:
        db.run_expect([0], "systemctl reload onprem-firewall.service")
    assert probe(outsider, DB_IP, 5432) == DROPPED


def test_each_port_opens_to_the_sources_that_use_it(db, host):
    # site-mon: in the client networks (PostgreSQL, Redis) and the monitoring host (the exporters)
    assert probes(host, DB_IP, [5432, 6380, 9100, 9187, 9121]) == dict.fromkeys([5432, 6380, 9100, 9187, 9121], CONNECTED)
    # site-db: a client, not an administrator: Prometheus and Alertmanager stay closed to it, and
    # not the monitoring host: site-mon's own node exporter is closed to it too
    assert probes(db, MON_IP, [9090, 9093, 9100]) == dict.fromkeys([9090, 9093, 9100], DROPPED)


def test_the_rules_are_one_table_loaded_at_boot_and_no_rollback_is_left_armed(db, host):
    for h in (db, host):
        ruleset = h.check_output("nft list table inet onprem_datastores")
        assert "policy drop;" in ruleset
        assert h.service("onprem-firewall.service").is_enabled
        assert h.run("systemctl is-active onprem-firewall-rollback.timer").stdout.strip() != "active"
    # the exporters' rule names the monitoring host only, PostgreSQL's the client network and site-db
    ruleset = db.check_output("nft list table inet onprem_datastores")
    assert 'ip saddr 10.213.60.11 tcp dport 9100 accept comment "exporter"' in ruleset, ruleset
    assert 'ip saddr { 10.213.60.8/29 } tcp dport 5432 accept' in ruleset or \
           'ip saddr 10.213.60.8/29 tcp dport 5432 accept' in ruleset, ruleset
