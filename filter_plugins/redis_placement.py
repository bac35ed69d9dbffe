# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""redis_placement: where each Redis Cluster primary and replica runs, zone-aware and deterministic.

Azure Cache for Redis places a shard's replica in another zone and spreads the
primaries over the zones.  This filter does the same for a list of hosts with
zones, so that one host or one zone can fail and the cluster keeps a majority
of primaries and a copy of every slot.

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: redis_placement
short_description: Zone-aware placement of Redis Cluster primaries and replicas on hosts
version_added: 0.1.0
author: onprem.datastores maintainers
description:
  - Places O(shards) primaries and O(replicas) replicas per shard on the hosts of O(_input), and
    gives every instance a port from O(base_port) upwards and every primary its slot range.
  - Rules - no replica on its primary's host or zone (nor on the zone of another member of its
    shard); no zone holds half or more of the primaries, so losing one zone leaves a majority of
    primaries to elect replacements.
  - Deterministic - the same input gives the same placement. Primaries go to the zone with the
    fewest primaries (ties to the earlier zone, then the emptier or earlier host); replicas are
    matched to allowed hosts so that no host carries more than its fair share (instances / hosts,
    rounded up) whenever such a placement exists.
  - A topology that cannot meet the rules raises an error naming the argument, before anything is
    changed on a host.
  - With O(mode=standalone) there is one primary (the first host) and each other host, up to
    O(replicas), holds one replica; no slots and no zone rule for primaries.
  - Growth - given O(formed), the placement of a formed cluster, its shards keep their hosts and
    ports, and only the shards beyond them are placed, by the same rules, on ports after each
    host's highest. Nothing formed ever moves, so a plan grown from 6 to 9 shards leaves the first
    6 exactly where they run; a new shard holds slots only once the cluster is resharded.
positional: _input
options:
  _input:
    description:
      - The hosts and their zones, in inventory order. A mapping of host name to zone, or a list of
        mappings with keys C(host) and C(zone). A host without zone is its own zone.
    type: raw
    required: true
  shards:
    description: Primaries (shards) of the cluster; at least 3 in cluster mode (Redis Cluster's minimum).
    type: int
    default: 6
  replicas:
    description: Replicas of each primary; 0 to 5.
    type: int
    default: 1
  base_port:
    description: First TLS port on each host; instances use consecutive ports.
    type: int
    default: 6380
  mode:
    description: C(cluster) or C(standalone).
    type: str
    default: cluster
    choices: [cluster, standalone]
  formed:
    description:
      - The placement of the cluster as formed (a previous result of this filter, or its C(shards)),
        kept as it is; empty to plan from scratch. Cluster mode only. Shrinking, removing a host that
        holds instances, or changing the replicas per shard is refused.
    type: raw
    default: []
  names:
    description:
      - What to call the arguments in error messages, e.g. C(names=dict(shards='redis_shards')), so that an error
        names the variable the caller set instead of the filter's argument. Keys - hosts, shards,
        replicas, base_port, mode, formed.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Plan six shards with one replica on three hosts in three zones
  ansible.builtin.set_fact:
    __redis_topology: >-
      {{ dict(groups['redis'] | zip(groups['redis'] | map('extract', hostvars, 'redis_zone')))
         | onprem.datastores.redis_placement(shards=6, replicas=1) }}
  # __redis_topology.hosts['redis-1'] == [{'port': 6380, 'role': 'primary', 'shard': 0, ...}, ...]
"""

RETURN = r"""
_value:
  description: The placement.
  type: dict
  contains:
    shards:
      description: One entry per shard, in shard order.
      type: list
      elements: dict
      contains:
        shard:
          description: Shard number from 0.
          type: int
        slots:
          description:
            - First and last hash slot the shard gets when the cluster is created from empty nodes
              (cluster mode), C([]) in standalone mode. A grown cluster's slots are where resharding put them.
          type: list
          elements: int
        primary:
          description: C(host), C(zone), C(port) of the primary.
          type: dict
        replicas:
          description: C(host), C(zone), C(port) of each replica.
          type: list
          elements: dict
    hosts:
      description:
        - Host name to its instances, in port order. Each instance has C(port), C(role)
          (C(primary) or C(replica)), C(shard), C(zone), C(primary_host) and C(primary_port).
        - Every input host is present; a host may have no instance in standalone mode.
      type: dict
    instances_per_host:
      description: The largest number of instances on one host.
      type: int
    formed_shards:
      description: How many of the shards come from O(formed) (0 when planned from scratch); the others are new.
      type: int
"""

FILTER = "redis_placement"
SLOTS = 16384
MODES = ("cluster", "standalone")


class _ArgumentError(AnsibleFilterError):
    """An argument the filter refuses; redis_placement renames it after the caller's variable."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{FILTER}: {argument} {message}")
        self.argument = argument
        self.detail = message


def _fail(argument: str, message: str) -> AnsibleFilterError:
    return _ArgumentError(argument, message)


def _whole(value: Any, argument: str, minimum: int, maximum: int) -> int:
    number = value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    if isinstance(number, bool) or not isinstance(number, int) or not minimum <= number <= maximum:
        raise _fail(argument, f"must be a whole number from {minimum} to {maximum}; got {value!r}")
    return number


def _hosts(value: Any) -> list[tuple[str, str]]:
    pairs: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, Mapping) or "host" not in item:
                raise _fail("_input (hosts)", f"must list mappings with a 'host' key; got {item!r}")
            pairs.append((item["host"], item.get("zone")))
    else:
        raise _fail("_input (hosts)", f"must be a mapping of host to zone or a list of {{host, zone}}; got {value!r}")
    result: list[tuple[str, str]] = []
    seen: set[str] = set()
    for host, zone in pairs:
        if not isinstance(host, str) or not host:
            raise _fail("_input (hosts)", f"host names must be non-empty strings; got {host!r}")
        if host in seen:
            raise _fail("_input (hosts)", f"lists host {host!r} twice")
        seen.add(host)
        if zone is None or (isinstance(zone, str) and not zone.strip()):
            zone = host
        if isinstance(zone, bool) or not isinstance(zone, (str, int)):
            raise _fail("_input (hosts)", f"zone of {host!r} must be a string or number; got {zone!r}")
        result.append((host, str(zone).strip()))
    if not result:
        raise _fail("_input (hosts)", "must name at least one host; got none")
    return result


def _formed(value: Any, zone_of: dict[str, str], replicas: int) -> list[dict]:
    """The formed shards, checked: each a primary and `replicas` replicas on known hosts, ports unique."""
    shards = value.get("shards", []) if isinstance(value, Mapping) else value
    if not shards:
        return []
    if not isinstance(shards, (list, tuple)):
        raise _fail("formed", f"must be a previous placement or its list of shards; got {value!r}")
    result: list[dict] = []
    used: set[tuple[str, int]] = set()
    for index, shard in enumerate(shards):
        try:
            members = [shard["primary"]] + list(shard["replicas"])
            nodes = [(str(m["host"]), int(m["port"])) for m in members]
        except (KeyError, TypeError, ValueError) as error:
            raise _fail("formed", f"shard {index} must have a primary and replicas with host and port; got {shard!r}") from error
        gone = [host for host, _port in nodes if host not in zone_of]
        if gone:
            raise _fail(
                "formed",
                f"places shard {index} on {', '.join(sorted(set(gone)))}, which the hosts no longer list; "
                "moving a formed shard off a host is not supported",
            )
        if len(members) - 1 != replicas:
            raise _fail(
                "replicas",
                f"must stay as the cluster was formed: {len(members) - 1} replica(s) per shard, got {replicas}",
            )
        if used & set(nodes):
            raise _fail("formed", f"uses a host and port twice (shard {index}: {nodes})")
        used |= set(nodes)
        result.append({"members": nodes})
    return result


def _slot_ranges(shards: int) -> list[list[int]]:
    return [[i * SLOTS // shards, (i + 1) * SLOTS // shards - 1] for i in range(shards)]


def _place_replicas(
    host_zones: list[tuple[str, str]],
    group_of: dict[str, str],
    members: list[list[tuple[str, str]]],
    replicas: int,
    cap: int,
    load: dict[str, int],
) -> list[list[str]]:
    """Hosts of each shard's replicas (a list per shard), or [] if `cap` is too small."""
    groups: list[str] = []
    for host, _zone in host_zones:
        if group_of[host] not in groups:
            groups.append(group_of[host])
    # Nodes: source, shards, (shard, group), hosts, sink. Edges as residual capacities.
    graph: dict[Any, dict[Any, int]] = {"source": {}, "sink": {}}

    def edge(a: Any, b: Any, capacity: int) -> None:
        graph.setdefault(a, {})[b] = graph.setdefault(a, {}).get(b, 0) + capacity
        graph.setdefault(b, {}).setdefault(a, 0)

    for shard, shard_members in enumerate(members):
        used = {group_of[h] for h, _role in shard_members}
        edge("source", ("shard", shard), replicas)
        for group in groups:
            if group in used:
                continue
            edge(("shard", shard), ("group", shard, group), 1)
            for host, _zone in host_zones:
                if group_of[host] == group:
                    edge(("group", shard, group), ("host", host), 1)
    for host, _zone in host_zones:
        spare = cap - load[host]
        if spare > 0:
            edge(("host", host), "sink", spare)

    flow = 0
    while True:
        parent: dict[Any, Any] = {"source": None}
        queue = ["source"]
        while queue and "sink" not in parent:
            node = queue.pop(0)
            for nxt, capacity in graph[node].items():
                if capacity > 0 and nxt not in parent:
                    parent[nxt] = node
                    queue.append(nxt)
        if "sink" not in parent:
            break
        node = "sink"
        while parent[node] is not None:
            graph[parent[node]][node] -= 1
            graph[node][parent[node]] += 1
            node = parent[node]
        flow += 1
    if flow < replicas * len(members):
        return []
    result: list[list[str]] = [[] for _member in members]
    for shard in range(len(members)):
        for group in groups:
            node = ("group", shard, group)
            for host, _zone in host_zones:
                if graph.get(("host", host), {}).get(node, 0) > 0:
                    result[shard].append(host)
    return result


def redis_placement(
    hosts: Any,
    shards: Any = 6,
    replicas: Any = 1,
    base_port: Any = 6380,
    mode: str = "cluster",
    formed: Any = None,
    names: Any = None,
) -> dict:
    """Return the placement of every primary and replica (see DOCUMENTATION)."""
    try:
        return _placement(hosts, shards, replicas, base_port, mode, formed)
    except _ArgumentError as error:
        key = "hosts" if error.argument == "_input (hosts)" else error.argument
        name = (names or {}).get(key) if isinstance(names, Mapping) else None
        if not name:
            raise
        raise AnsibleFilterError(f"{FILTER}: {name} {error.detail}") from None


def _placement(hosts: Any, shards: Any, replicas: Any, base_port: Any, mode: str, formed: Any) -> dict:
    if mode not in MODES:
        raise _fail("mode", f"must be one of {', '.join(MODES)}; got {mode!r}")
    host_zones = _hosts(hosts)
    replica_count = _whole(replicas, "replicas", 0, 5)
    port0 = _whole(base_port, "base_port", 1, 65535 - 64)
    zone_of = dict(host_zones)
    order = {host: i for i, (host, _zone) in enumerate(host_zones)}
    zones: list[str] = []
    for _host, zone in host_zones:
        if zone not in zones:
            zones.append(zone)

    if mode == "standalone":
        shard_count = _whole(shards, "shards", 1, 1)
        if replica_count > len(host_zones) - 1:
            raise _fail(
                "replicas",
                f"needs one host per replica besides the primary's: {replica_count} replica(s) "
                f"but {len(host_zones)} host(s)",
            )
    else:
        shard_count = _whole(shards, "shards", 3, 1000)
        if len(zones) < replica_count + 1:
            raise _fail(
                "replicas",
                f"puts each member of a shard in its own zone: {replica_count} replica(s) need "
                f"{replica_count + 1} zones, the hosts have {len(zones)} ({', '.join(zones)})",
            )
    kept = _formed(formed or [], zone_of, replica_count)
    if kept and mode != "cluster":
        raise _fail("formed", "applies to cluster mode only")
    if shard_count < len(kept):
        raise _fail(
            "shards",
            f"cannot shrink the formed cluster: it has {len(kept)} shards, got {shard_count}",
        )

    load: dict[str, int] = {host: 0 for host, _zone in host_zones}
    zone_primaries: dict[str, int] = {zone: 0 for zone in zones}
    members: list[list[tuple[str, str]]] = [[] for _shard in range(shard_count)]  # (host, role)
    for shard, formed_shard in enumerate(kept):
        for index, (host, _port) in enumerate(formed_shard["members"]):
            load[host] += 1
            members[shard].append((host, "primary" if index == 0 else "replica"))
        zone_primaries[zone_of[formed_shard["members"][0][0]]] += 1

    for shard in range(len(kept), shard_count):
        if mode == "standalone":
            host = host_zones[0][0]
        else:
            zone = min(zones, key=lambda z: (zone_primaries[z], zones.index(z)))
            host = min((h for h, z in host_zones if z == zone), key=lambda h: (load[h], order[h]))
            zone_primaries[zone] += 1
        load[host] += 1
        members[shard].append((host, "primary"))
    most = max(zone_primaries.values())
    if mode == "cluster" and 2 * most >= shard_count:
        raise _fail(
            "shards",
            f"must leave no zone with half or more of the primaries: {shard_count} primaries on "
            f"{len(zones)} zone(s) put {most} in one zone; add zones or shards",
        )

    # Replicas: a maximum flow shard -> (shard, zone) -> host, so that each replica of a shard has
    # its own zone (its own host in standalone mode) and no host carries more than `cap` instances;
    # the smallest cap that fits wins, which keeps the hosts level.
    group_of = {h: (h if mode == "standalone" else z) for h, z in host_zones}
    total = shard_count * (1 + replica_count)
    cap = max([-(-total // len(host_zones))] + list(load.values()))
    new = members[len(kept):]
    chosen: list[list[str]] = []
    while replica_count and new:
        chosen = _place_replicas(host_zones, group_of, new, replica_count, cap, load)
        if chosen or cap >= total:
            break
        cap += 1
    if replica_count and new and not chosen:
        raise _fail("replicas", "cannot be placed outside their shard's hosts and zones")
    for shard, hosts_of_shard in enumerate(chosen if replica_count else [], start=len(kept)):
        for host in hosts_of_shard:
            load[host] += 1
            members[shard].append((host, "replica"))

    # Ports: formed instances keep theirs; the others go per host in placement order (primaries
    # first, by shard, then replicas) from the base port or after the host's highest formed port.
    next_port = {host: port0 for host, _zone in host_zones}
    assigned: dict[tuple[int, int], int] = {}
    for shard, formed_shard in enumerate(kept):
        for index, (host, port) in enumerate(formed_shard["members"]):
            assigned[(shard, index)] = port
            next_port[host] = max(next_port[host], port + 1)
    for index in range(replica_count + 1):
        for shard in range(len(kept), shard_count):
            if index < len(members[shard]):
                host = members[shard][index][0]
                assigned[(shard, index)] = next_port[host]
                next_port[host] += 1

    slot_ranges = _slot_ranges(shard_count) if mode == "cluster" else [[] for _shard in range(shard_count)]
    result_shards = []
    per_host: dict[str, list[dict]] = {host: [] for host, _zone in host_zones}
    for shard in range(shard_count):
        nodes = [
            {"host": host, "zone": zone_of[host], "port": assigned[(shard, index)]}
            for index, (host, _role) in enumerate(members[shard])
        ]
        result_shards.append({"shard": shard, "slots": slot_ranges[shard], "primary": nodes[0], "replicas": nodes[1:]})
        for index, node in enumerate(nodes):
            per_host[node["host"]].append({
                "port": node["port"],
                "role": "primary" if index == 0 else "replica",
                "shard": shard,
                "zone": node["zone"],
                "primary_host": nodes[0]["host"],
                "primary_port": nodes[0]["port"],
            })
    for instances in per_host.values():
        instances.sort(key=lambda item: item["port"])
    return {
        "shards": result_shards,
        "hosts": per_host,
        "instances_per_host": max(len(v) for v in per_host.values()),
        "formed_shards": len(kept),
    }


class FilterModule:
    """onprem.datastores.redis_placement"""

    def filters(self) -> dict:
        return {"redis_placement": redis_placement}
