# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewall_rules: a host's inbound rules, from the endpoints its roles publish.

Each role that listens publishes its endpoints in a local fact (onprem_endpoints_<role>): a list of
{service, port, proto, networks, hosts}. networks names the kinds of sources an endpoint serves
(clients, admin); hosts names the inventory hosts that use it (the cluster's members, the
monitoring host). The firewall role hands them here with the addresses of the inventory's hosts and
the networks of the inventory, and renders the result: one rule per (proto, port) with the union of
its sources, IPv4 and IPv6 apart, overlapping networks collapsed. Whatever is not in the result is
refused by the host.

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: firewall_rules
short_description: A host's inbound firewall rules from the endpoints its roles publish
version_added: 0.3.0
author: onprem.datastores maintainers
description:
  - Merges endpoints by protocol and port, resolves their sources (network kinds and inventory
    hosts) to addresses, and returns the rules sorted by protocol and port.
  - Fails, naming the endpoint, on a port outside 1-65535, an unknown protocol, an unknown kind of
    network, a host without an address, or an address that is not an IP network.
positional: _input, addresses, networks
options:
  _input:
    description: The endpoints, a list of dicts with service, port, proto (tcp, udp; default tcp),
      networks (kinds of networks, keys of O(networks)) and hosts (inventory names, keys of O(addresses)).
    type: list
    elements: dict
    required: true
  addresses:
    description: Inventory name -> the address its connections come from.
    type: dict
    required: true
  networks:
    description: Kind of network -> list of networks (CIDR) or addresses.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Work out the rules
  ansible.builtin.set_fact:
    rules: "{{ endpoints | onprem.datastores.firewall_rules(addresses, {'clients': ['10.0.1.0/24'], 'admin': ['10.0.4.0/24']}) }}"
"""

RETURN = r"""
_value:
  description: One dict per (proto, port) - proto, port, services (sorted names), ipv4 and ipv6 (collapsed
    networks as strings; C(0.0.0.0/0) or C(::/0) means any source of that family).
  type: list
  elements: dict
"""

PROTOCOLS = ("tcp", "udp")


def _network(value, where: str):
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError as exc:
        raise AnsibleFilterError("%s: %r is not an IP address or network (%s)" % (where, value, exc)) from None


def firewall_rules(endpoints, addresses, networks):
    if not isinstance(endpoints, list):
        raise AnsibleFilterError("firewall_rules expects a list of endpoints, got %s" % type(endpoints).__name__)
    merged: dict[tuple[str, int], dict] = {}
    for endpoint in endpoints:
        service = str(endpoint.get("service", "?"))
        proto = str(endpoint.get("proto", "tcp"))
        if proto not in PROTOCOLS:
            raise AnsibleFilterError("endpoint %s: proto must be one of %s, got %r" % (service, ", ".join(PROTOCOLS), proto))
        try:
            port = int(endpoint["port"])
        except (KeyError, TypeError, ValueError):
            raise AnsibleFilterError("endpoint %s: port must be a number from 1 to 65535, got %r"
                                     % (service, endpoint.get("port"))) from None
        if not 1 <= port <= 65535:
            raise AnsibleFilterError("endpoint %s: port must be a number from 1 to 65535, got %d" % (service, port))
        rule = merged.setdefault((proto, port), {"services": set(), "sources": []})
        rule["services"].add(service)
        for kind in endpoint.get("networks") or []:
            if kind not in networks:
                raise AnsibleFilterError("endpoint %s (%s/%d): unknown kind of network %r; known: %s"
                                         % (service, proto, port, kind, ", ".join(sorted(networks))))
            for value in networks[kind] or []:
                rule["sources"].append(_network(value, "network %s of endpoint %s" % (kind, service)))
        for host in endpoint.get("hosts") or []:
            if not addresses.get(host):
                raise AnsibleFilterError("endpoint %s (%s/%d): host %s has no known address"
                                         % (service, proto, port, host))
            rule["sources"].append(_network(addresses[host], "address of %s for endpoint %s" % (host, service)))
    rules = []
    for (proto, port), rule in sorted(merged.items()):
        families = {}
        for version in (4, 6):
            nets = [n for n in rule["sources"] if n.version == version]
            families[version] = [str(n) for n in ipaddress.collapse_addresses(nets)] if nets else []
        rules.append({"proto": proto, "port": port, "services": sorted(rule["services"]),
                      "ipv4": families[4], "ipv6": families[6]})
    return rules


def firewall_bad_networks(values):
    """The entries of a list that are not an IP network or address, as given (for a preflight message)."""
    bad = []
    for value in values or []:
        try:
            _network(value, "")
        except AnsibleFilterError:
            bad.append(value)
    return bad


class FilterModule:
    def filters(self):
        return {"firewall_rules": firewall_rules, "firewall_bad_networks": firewall_bad_networks}
