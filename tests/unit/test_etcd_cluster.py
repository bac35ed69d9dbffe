# -*- coding: utf-8 -*-
"""etcd_cluster: URLs, initial-cluster and endpoints worked out by hand, zone warnings, and an error table."""

import pytest
from ansible.errors import AnsibleFilterError

from etcd_cluster import FilterModule, etcd_cluster

THREE = [
    {"name": "etcd1", "address": "10.0.1.11", "zone": "1"},
    {"name": "etcd2", "address": "10.0.2.12", "zone": "2"},
    {"name": "etcd3", "address": "10.0.3.13", "zone": "3"},
]
FIVE = THREE + [
    {"name": "etcd4", "address": "10.0.1.14", "zone": "1"},
    {"name": "etcd5", "address": "10.0.2.15", "zone": "2"},
]


def test_registered_as_filter():
    assert FilterModule().filters() == {"etcd_cluster": etcd_cluster}


def test_three_members():
    cluster = etcd_cluster(THREE)
    assert cluster["members"][0] == {
        "name": "etcd1", "address": "10.0.1.11", "zone": "1",
        "peer_url": "https://10.0.1.11:2380", "client_url": "https://10.0.1.11:2379",
    }
    assert cluster["initial_cluster"] == (
        "etcd1=https://10.0.1.11:2380,etcd2=https://10.0.2.12:2380,etcd3=https://10.0.3.13:2380")
    assert cluster["endpoints"] == ["10.0.1.11:2379", "10.0.2.12:2379", "10.0.3.13:2379"]
    assert cluster["client_urls"] == ["https://10.0.1.11:2379", "https://10.0.2.12:2379", "https://10.0.3.13:2379"]
    assert cluster["quorum"] == 2
    assert cluster["warnings"] == []


def test_five_members_in_three_zones_other_ports():
    cluster = etcd_cluster(FIVE, client_port="12379", peer_port=12380)
    assert cluster["quorum"] == 3
    assert cluster["endpoints"][3:] == ["10.0.1.14:12379", "10.0.2.15:12379"]
    assert cluster["initial_cluster"].split(",")[4] == "etcd5=https://10.0.2.15:12380"
    # zones 1 and 2 hold 2 of 5 each, zone 3 one: no zone holds the 3 a quorum needs
    assert cluster["warnings"] == []


@pytest.mark.parametrize("zones, warnings", [
    pytest.param(["", "", ""], [], id="no-zones-nothing-to-say"),
    pytest.param(["1", "2", "3"], [], id="three-zones"),
    pytest.param(["1", "1", "2"], ["zone '1' holds 2 of the 3 members (etcd1, etcd2): losing that zone loses the "
                                   "quorum (2 needed); spread the members over at least 3 zones"], id="two-in-one-zone"),
    pytest.param(["a", "a", "a"], ["zone 'a' holds 3 of the 3 members (etcd1, etcd2, etcd3): losing that zone loses "
                                   "the quorum (2 needed); spread the members over at least 3 zones"], id="all-in-one"),
    # an empty zone is a zone of its own: 1, 2 and (etcd3) are three zones
    pytest.param(["1", "2", ""], [], id="one-without-zone"),
    pytest.param([1, 1, None], ["zone '1' holds 2 of the 3 members (etcd1, etcd2): losing that zone loses the "
                                "quorum (2 needed); spread the members over at least 3 zones"], id="zones-read-as-text"),
])
def test_zone_warnings(zones, warnings):
    members = [dict(m, zone=z) for m, z in zip(THREE, zones)]
    assert etcd_cluster(members)["warnings"] == warnings


def test_five_members_three_in_one_zone_warn():
    members = [dict(m, zone="1" if i < 3 else "2") for i, m in enumerate(FIVE)]
    assert etcd_cluster(members)["warnings"] == [
        "zone '1' holds 3 of the 5 members (etcd1, etcd2, etcd3): losing that zone loses the quorum (3 needed); "
        "spread the members over at least 3 zones"]


def test_missing_zone_key_and_address_with_spaces():
    members = [{"name": m["name"], "address": " " + m["address"] + " "} for m in THREE]
    cluster = etcd_cluster(members)
    assert [m["zone"] for m in cluster["members"]] == ["", "", ""]
    assert cluster["members"][1]["address"] == "10.0.2.12"


ERRORS = [
    ("etcd1", {}, "members must be a list of members"),
    ({"name": "etcd1"}, {}, "members must be a list of members"),
    ([], {}, "members must be 3 or 5 members"),
    (THREE[:1], {}, "members must be 3 or 5 members (a single member has no fault tolerance"),
    (THREE[:2], {}, "got 2"),
    (FIVE[:4], {}, "got 4"),
    (FIVE + [{"name": "etcd6", "address": "10.0.3.16"}], {}, "got 6"),
    ([THREE[0], THREE[1], "etcd3"], {}, "members[2] must be a mapping with name, address and zone"),
    ([THREE[0], THREE[1], {"address": "10.0.3.13"}], {}, "members[2].name must be a non-empty string"),
    ([THREE[0], THREE[1], dict(THREE[2], name="a=b")], {}, "members[a=b].name must be free of commas"),
    ([THREE[0], THREE[1], dict(THREE[2], name="a b")], {}, "members[a b].name must be free of commas"),
    ([THREE[0], THREE[1], dict(THREE[2], address="")], {},
     "members[etcd3].address is empty: set etcd_address (host variable of etcd3)"),
    ([THREE[0], THREE[1], {"name": "etcd3"}], {}, "members[etcd3].address is empty"),
    ([THREE[0], THREE[1], dict(THREE[2], address="etcd3.example.internal")], {},
     "members[etcd3].address must be an IPv4 address (set etcd_address); got 'etcd3.example.internal'"),
    ([THREE[0], THREE[1], dict(THREE[2], address="10.0.3.256")], {}, "members[etcd3].address must be an IPv4"),
    ([THREE[0], THREE[1], dict(THREE[2], name="etcd1")], {}, "members must be unique names; got ['etcd1']"),
    ([THREE[0], THREE[1], dict(THREE[2], address="10.0.1.11")], {},
     "members must be unique addresses (shared by etcd1, etcd3); got ['10.0.1.11']"),
    (THREE, {"client_port": 0}, "client_port must be a port number 1-65535; got 0"),
    (THREE, {"client_port": 65536}, "client_port must be a port number 1-65535; got 65536"),
    (THREE, {"client_port": True}, "client_port must be a port number 1-65535; got True"),
    (THREE, {"peer_port": "http"}, "peer_port must be a port number 1-65535; got 'http'"),
    (THREE, {"client_port": 2380}, "peer_port must be different from client_port; got 2380"),
]


@pytest.mark.parametrize("members, kwargs, message", ERRORS)
def test_errors(members, kwargs, message):
    with pytest.raises(AnsibleFilterError) as error:
        etcd_cluster(members, **kwargs)
    assert message in str(error.value)
