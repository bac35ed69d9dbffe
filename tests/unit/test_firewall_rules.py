# -*- coding: utf-8 -*-
"""firewall_rules: endpoints merged by port, sources resolved and collapsed, mistakes named.

The expected rules are written out by hand from the endpoints of each case.
"""

import pytest
from ansible.errors import AnsibleFilterError

from firewall_rules import firewall_bad_networks, firewall_rules

ADDRESSES = {"pg1": "10.0.2.11", "pg2": "10.0.2.12", "pg3": "10.0.2.13", "mon": "10.0.4.5", "v6": "fd00::7"}
NETWORKS = {"clients": ["10.0.1.0/24"], "admin": ["10.0.4.0/24", "fd00:4::/64"]}


def test_a_cluster_port_opens_to_its_members_only_and_a_client_port_to_the_clients_too():
    endpoints = [
        {"service": "postgresql", "port": 5432, "networks": ["clients"], "hosts": ["pg1", "pg2", "pg3"]},
        {"service": "patroni", "port": 8008, "hosts": ["pg1", "pg2", "pg3"]},
    ]
    assert firewall_rules(endpoints, ADDRESSES, NETWORKS) == [
        {"proto": "tcp", "port": 5432, "services": ["postgresql"],
         "ipv4": ["10.0.1.0/24", "10.0.2.11/32", "10.0.2.12/31"], "ipv6": []},
        {"proto": "tcp", "port": 8008, "services": ["patroni"],
         "ipv4": ["10.0.2.11/32", "10.0.2.12/31"], "ipv6": []},
    ]
    # (10.0.2.12 and .13 are the two addresses of 10.0.2.12/31: one entry)


def test_two_roles_on_one_port_share_one_rule_and_overlaps_collapse():
    endpoints = [
        {"service": "ssh", "port": 22, "networks": ["admin"]},
        {"service": "redis-backup-copy", "port": "22", "hosts": ["mon", "pg1"]},
    ]
    # mon's address is inside the admin network: collapsed into it
    assert firewall_rules(endpoints, ADDRESSES, NETWORKS) == [
        {"proto": "tcp", "port": 22, "services": ["redis-backup-copy", "ssh"],
         "ipv4": ["10.0.2.11/32", "10.0.4.0/24"], "ipv6": ["fd00:4::/64"]},
    ]


def test_any_source_stays_any_and_an_endpoint_without_sources_opens_to_nobody():
    endpoints = [
        {"service": "postgresql", "port": 5432, "networks": ["clients"], "hosts": ["v6"]},
        {"service": "unused", "port": 9999, "proto": "udp"},
    ]
    rules = firewall_rules(endpoints, ADDRESSES, {"clients": ["0.0.0.0/0", "10.0.1.0/24", "::/0"]})
    assert rules == [
        {"proto": "tcp", "port": 5432, "services": ["postgresql"], "ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]},
        {"proto": "udp", "port": 9999, "services": ["unused"], "ipv4": [], "ipv6": []},
    ]


@pytest.mark.parametrize("endpoint, networks, message", [
    ({"service": "redis", "port": 70000}, NETWORKS, "endpoint redis: port must be a number from 1 to 65535, got 70000"),
    ({"service": "redis", "port": "x"}, NETWORKS, "endpoint redis: port must be a number from 1 to 65535, got 'x'"),
    ({"service": "redis", "port": 6380, "proto": "sctp"}, NETWORKS, "endpoint redis: proto must be one of tcp, udp, got 'sctp'"),
    ({"service": "redis", "port": 6380, "networks": ["apps"]}, NETWORKS,
     "endpoint redis (tcp/6380): unknown kind of network 'apps'; known: admin, clients"),
    ({"service": "redis", "port": 6380, "hosts": ["nowhere"]}, NETWORKS,
     "endpoint redis (tcp/6380): host nowhere has no known address"),
    ({"service": "redis", "port": 6380, "networks": ["clients"]}, {"clients": ["10.0.0.300/24"]},
     "network clients of endpoint redis: '10.0.0.300/24' is not an IP address or network"),
])
def test_mistakes_are_named(endpoint, networks, message):
    with pytest.raises(AnsibleFilterError) as raised:
        firewall_rules([endpoint], ADDRESSES, networks)
    assert message in str(raised.value)


def test_bad_networks_are_listed_as_given():
    assert firewall_bad_networks(["10.0.1.0/24", "10.0.0.300/24", "fd00::/64", "10.0.4.5", "office", "10.0.1.0/33"]) \
        == ["10.0.0.300/24", "office", "10.0.1.0/33"]
