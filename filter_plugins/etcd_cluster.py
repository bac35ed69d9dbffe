# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd_cluster: the members, URLs and client endpoints of an etcd cluster, from the inventory.

The etcd role renders each member's configuration from it, and Patroni (the failover manager of the
PostgreSQL clusters, which uses this etcd as its DCS) reads its client endpoints from the same
result, built from the same inventory data, so the two sides cannot disagree on where etcd is.

Only 3 or 5 members are offered: 1 has no fault tolerance, 2 and 4 tolerate no more failures than
1 and 3 while needing one more member for every write, and more than 5 slows every write down.

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: etcd_cluster
short_description: Members, peer and client URLs, initial-cluster string and client endpoints of an etcd cluster
version_added: 0.2.0
author: onprem.datastores maintainers
description:
  - Takes the members of one etcd cluster (inventory name, IPv4 address, zone) and the two ports,
    and returns every member with its C(peer_url) and C(client_url) (https), the
    C(initial_cluster) string every member starts with, and the client C(endpoints) as
    C(address:port) (the form Patroni's C(etcd3.hosts) takes).
  - Refuses a member count other than 3 or 5, duplicate names or addresses, a member without an
    address (naming the host and C(etcd_address), the host variable to set), an address that is
    not an IPv4 address, a name etcd's C(--initial-cluster) cannot carry, and ports outside
    1-65535 or equal to each other.
  - Warns (does not refuse) when one zone holds a majority of the members - losing that zone loses
    the quorum. A member with an empty zone counts as a zone of its own; without any zone there is
    nothing to warn about.
positional: _input
options:
  _input:
    description:
      - The members, a list of mappings with C(name) (the inventory name; etcd's member name),
        C(address) (IPv4 address the other members and the clients reach it at) and C(zone)
        (optional, empty for none), in inventory order.
    type: list
    elements: dict
    required: true
  client_port:
    description: Client port of every member (etcd_client_port).
    type: int
    default: 2379
  peer_port:
    description: Peer port of every member (etcd_peer_port).
    type: int
    default: 2380
"""

EXAMPLES = r"""
- name: Work out the etcd cluster
  ansible.builtin.set_fact:
    __etcd: >-
      {{ [{'name': 'etcd1', 'address': '10.0.1.11', 'zone': '1'},
          {'name': 'etcd2', 'address': '10.0.2.12', 'zone': '2'},
          {'name': 'etcd3', 'address': '10.0.3.13', 'zone': '3'}]
         | onprem.datastores.etcd_cluster(client_port=2379, peer_port=2380) }}
  # __etcd.initial_cluster == 'etcd1=https://10.0.1.11:2380,etcd2=https://10.0.2.12:2380,etcd3=https://10.0.3.13:2380'
  # __etcd.endpoints == ['10.0.1.11:2379', '10.0.2.12:2379', '10.0.3.13:2379']
"""

RETURN = r"""
_value:
  description: The cluster.
  type: dict
  contains:
    members:
      description:
        - Every member in input order - C(name), C(address), C(zone), C(peer_url)
          (C(https://address:peer_port)), C(client_url) (C(https://address:client_port)).
      type: list
      elements: dict
    initial_cluster:
      description: C(name=peer_url) of every member joined by commas (etcd's --initial-cluster).
      type: str
    endpoints:
      description: C(address:client_port) of every member, in input order.
      type: list
      elements: str
    client_urls:
      description: C(https://address:client_port) of every member, in input order.
      type: list
      elements: str
    quorum:
      description: Members needed for a majority (2 of 3, 3 of 5).
      type: int
    warnings:
      description: Accepted but doubtful choices (one zone holding a majority of the members).
      type: list
      elements: str
"""

FILTER = "etcd_cluster"
SIZES = (3, 5)
# A member name goes into --initial-cluster as name=url,name=url: no comma, equals sign or space.
NAME_RE = re.compile(r"^[^,=\s]+$")


def _fail(argument: str, allowed: str, value: Any) -> AnsibleFilterError:
    return AnsibleFilterError(f"{FILTER}: {argument} must be {allowed}; got {value!r}")


def _port(value: Any, argument: str) -> int:
    allowed = "a port number 1-65535"
    if isinstance(value, bool):
        raise _fail(argument, allowed, value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise _fail(argument, allowed, value)
    return value


def _member(item: Any, index: int) -> dict:
    if not isinstance(item, Mapping):
        raise _fail(f"members[{index}]", "a mapping with name, address and zone", item)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(f"members[{index}].name", "a non-empty string", name)
    if not NAME_RE.match(name):
        raise _fail(f"members[{name}].name", "free of commas, equals signs and spaces (etcd's --initial-cluster)", name)
    address = item.get("address")
    address = "" if address is None else str(address).strip()
    if not address:
        raise AnsibleFilterError(
            f"{FILTER}: members[{name}].address is empty: set etcd_address (host variable of {name}) to the IPv4 "
            "address the other members and the clients reach it at, or make its facts readable "
            "(ansible_facts.default_ipv4)")
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise _fail(f"members[{name}].address", "an IPv4 address (set etcd_address)", address) from None
    zone = item.get("zone")
    zone = "" if zone is None else str(zone)
    return {"name": name, "address": address, "zone": zone}


def _duplicates(values: list) -> list:
    return sorted({v for v in values if values.count(v) > 1})


def etcd_cluster(members: Any, client_port: Any = 2379, peer_port: Any = 2380) -> dict:
    """Return the cluster's members, URLs and endpoints; see DOCUMENTATION."""
    if isinstance(members, (str, bytes, Mapping)) or not isinstance(members, (list, tuple)):
        raise _fail("members", "a list of members", members)
    if len(members) not in SIZES:
        raise _fail("members", "3 or 5 members (a single member has no fault tolerance; 2 and 4 tolerate no more "
                    "failures than 1 and 3)", len(members))
    parsed = [_member(item, index) for index, item in enumerate(members)]

    duplicate_names = _duplicates([m["name"] for m in parsed])
    if duplicate_names:
        raise _fail("members", "unique names", duplicate_names)
    duplicate_addresses = _duplicates([m["address"] for m in parsed])
    if duplicate_addresses:
        holders = [m["name"] for m in parsed if m["address"] in duplicate_addresses]
        raise _fail("members", f"unique addresses (shared by {', '.join(holders)})", duplicate_addresses)

    client = _port(client_port, "client_port")
    peer = _port(peer_port, "peer_port")
    if client == peer:
        raise _fail("peer_port", "different from client_port", peer)

    plan = [dict(m, peer_url=f"https://{m['address']}:{peer}", client_url=f"https://{m['address']}:{client}")
            for m in parsed]
    quorum = len(plan) // 2 + 1

    warnings = []
    if any(m["zone"] for m in plan):
        zones: dict = {}
        for m in plan:
            # A member without a zone is a zone of its own.
            zones.setdefault(m["zone"] or f"(no zone: {m['name']})", []).append(m["name"])
        for zone, names in zones.items():
            if len(names) >= quorum:
                warnings.append(
                    f"zone {zone!r} holds {len(names)} of the {len(plan)} members ({', '.join(names)}): losing that "
                    f"zone loses the quorum ({quorum} needed); spread the members over at least 3 zones")

    return {
        "members": plan,
        "initial_cluster": ",".join(f"{m['name']}={m['peer_url']}" for m in plan),
        "endpoints": [f"{m['address']}:{client}" for m in plan],
        "client_urls": [m["client_url"] for m in plan],
        "quorum": quorum,
        "warnings": warnings,
    }


class FilterModule:
    """onprem.datastores.etcd_cluster"""

    def filters(self) -> dict:
        return {"etcd_cluster": etcd_cluster}
