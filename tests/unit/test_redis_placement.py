# -*- coding: utf-8 -*-
"""redis_placement: the placement rules hold for every accepted topology, and an error table."""

import itertools
from collections import Counter

import pytest
from ansible.errors import AnsibleFilterError

from redis_placement import FilterModule, redis_placement

THREE = {"redis-1": "1", "redis-2": "2", "redis-3": "3"}


def check_rules(result, hosts, shards, replicas, mode="cluster", level=True):
    pairs = hosts.items() if isinstance(hosts, dict) else [(h["host"], h.get("zone")) for h in hosts]
    zone_of = {host: str(zone) if zone is not None else host for host, zone in pairs}
    assert len(result["shards"]) == shards
    for shard in result["shards"]:
        members = [shard["primary"]] + shard["replicas"]
        assert len(shard["replicas"]) == replicas
        assert len({m["host"] for m in members}) == len(members), "two members of a shard on one host"
        if mode == "cluster":
            assert len({m["zone"] for m in members}) == len(members), "two members of a shard in one zone"
    if mode == "cluster":
        primaries = Counter(zone_of[s["primary"]["host"]] for s in result["shards"])
        assert all(2 * count < shards for count in primaries.values()), primaries
        covered = [s["slots"] for s in result["shards"]]
        assert covered[0][0] == 0 and covered[-1][1] == 16383
        assert all(a[1] + 1 == b[0] for a, b in zip(covered, covered[1:]))
    loads = [len(v) for v in result["hosts"].values()]
    if mode == "cluster" and level:
        total = shards * (1 + replicas)
        assert max(loads) <= -(-total // len(loads)), loads
    ports = [(h, i["port"]) for h, items in result["hosts"].items() for i in items]
    assert len(ports) == len(set(ports)) == shards * (1 + replicas)


def test_seed_topology_three_hosts_three_zones():
    result = redis_placement(THREE)
    check_rules(result, THREE, 6, 1)
    assert result["instances_per_host"] == 4
    assert [s["primary"]["host"] for s in result["shards"]] == ["redis-1", "redis-2", "redis-3"] * 2
    assert [i["port"] for i in result["hosts"]["redis-1"]] == [6380, 6381, 6382, 6383]
    assert result["shards"][0]["slots"] == [0, 2729]
    assert result["shards"][5]["slots"] == [13653, 16383]


def test_is_deterministic():
    assert redis_placement(THREE) == redis_placement(dict(THREE))


@pytest.mark.parametrize(
    "hosts, shards, replicas",
    [
        pytest.param(THREE, 3, 1, id="3-hosts-3-shards"),
        pytest.param(THREE, 6, 2, id="3-hosts-2-replicas"),
        pytest.param({f"h{i}": str(i % 3) for i in range(6)}, 6, 1, id="6-hosts-3-zones"),
        pytest.param({f"h{i}": str(i % 3) for i in range(6)}, 12, 1, id="6-hosts-12-shards"),
        pytest.param({f"h{i}": None for i in range(4)}, 6, 1, id="hosts-are-zones"),
        pytest.param([{"host": "a", "zone": 1}, {"host": "b", "zone": 2}, {"host": "c", "zone": 3}], 9, 1,
                     id="list-input-int-zones"),
        pytest.param({"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}, 5, 1, id="5-zones"),
    ],
)
def test_rules_hold(hosts, shards, replicas):
    check_rules(redis_placement(hosts, shards=shards, replicas=replicas), hosts, shards, replicas)


def test_rules_hold_exhaustively():
    checked = 0
    for count, zone_count, shards, replicas in itertools.product(range(1, 8), range(1, 5), range(3, 13), range(0, 3)):
        hosts = {f"h{i}": f"z{i % zone_count}" for i in range(count)}
        try:
            result = redis_placement(hosts, shards=shards, replicas=replicas)
        except AnsibleFilterError:
            continue
        checked += 1
        # Hosts are level (fair share, rounded up) when every zone has as many hosts.
        check_rules(result, hosts, shards, replicas, level=count % zone_count == 0)
    assert checked > 250


def test_standalone():
    result = redis_placement({"a": "1", "b": "1"}, shards=1, replicas=1, mode="standalone")
    assert result["shards"][0]["primary"] == {"host": "a", "zone": "1", "port": 6380}
    assert result["shards"][0]["replicas"] == [{"host": "b", "zone": "1", "port": 6380}]
    assert result["shards"][0]["slots"] == []
    only = redis_placement({"a": "1"}, shards=1, replicas=0, mode="standalone")
    assert only["hosts"] == {"a": [{"port": 6380, "role": "primary", "shard": 0, "zone": "1",
                                    "primary_host": "a", "primary_port": 6380}]}


def instances(result):
    return {(host, item["port"]): (item["role"], item["shard"]) for host, items in result["hosts"].items() for item in items}


@pytest.mark.parametrize(
    "hosts, before, after, replicas",
    [
        pytest.param(THREE, 6, 7, 1, id="seed-6-to-7"),
        pytest.param(THREE, 6, 9, 1, id="seed-6-to-9"),
        pytest.param(THREE, 3, 12, 2, id="3-to-12-two-replicas"),
        pytest.param({**THREE, "redis-4": "1", "redis-5": "2", "redis-6": "3"}, 6, 12, 1, id="new-hosts"),
        pytest.param({"a": "1", "b": "2", "c": "3", "d": "4"}, 6, 6, 1, id="unchanged"),
    ],
)
def test_growth_keeps_every_formed_instance_where_it_runs(hosts, before, after, replicas):
    first_hosts = {h: z for h, z in hosts.items() if h in THREE} if before == 6 and "redis-4" in hosts else hosts
    formed = redis_placement(first_hosts, shards=before, replicas=replicas)
    grown = redis_placement(hosts, shards=after, replicas=replicas, formed=formed)
    assert grown["formed_shards"] == before
    old, new = instances(formed), instances(grown)
    assert {node: new[node] for node in old} == old, "a formed instance moved or changed role"
    assert len(new) == after * (1 + replicas)
    assert [{k: s[k] for k in ("primary", "replicas")} for s in grown["shards"][:before]] == [
        {k: s[k] for k in ("primary", "replicas")} for s in formed["shards"]]
    # the same rules as a plan from scratch, for the new shards and the whole
    zone_of = dict(hosts)
    for shard in grown["shards"]:
        members = [shard["primary"]] + shard["replicas"]
        assert len({zone_of[m["host"]] for m in members}) == len(members)
    primaries = Counter(zone_of[s["primary"]["host"]] for s in grown["shards"])
    assert all(2 * count < after for count in primaries.values()), primaries
    # new instances take ports after the host's formed ones, consecutive from there
    for host, items in grown["hosts"].items():
        ports = [i["port"] for i in items]
        assert ports == list(range(6380, 6380 + len(ports))), (host, ports)
    # the stored plan (or only its shards) gives the same growth, and growing again changes nothing
    assert redis_placement(hosts, shards=after, replicas=replicas, formed=formed["shards"]) == grown
    assert instances(redis_placement(hosts, shards=after, replicas=replicas, formed=grown)) == new


def test_growth_spreads_new_instances_onto_new_hosts():
    formed = redis_placement(THREE)
    six = {**THREE, "redis-4": "1", "redis-5": "2", "redis-6": "3"}
    grown = redis_placement(six, shards=12, formed=formed)
    loads = {host: len(items) for host, items in grown["hosts"].items()}
    assert loads == {host: 4 for host in six}, loads


GROWTH_ERRORS = [
    pytest.param(THREE, {"shards": 5}, "shards cannot shrink the formed cluster: it has 6 shards, got 5", id="shrink"),
    pytest.param({"redis-1": "1", "redis-2": "2", "redis-4": "3"}, {}, "formed places shard 1 on redis-3", id="host-gone"),
    pytest.param(THREE, {"replicas": 2}, "replicas must stay as the cluster was formed: 1 replica(s)", id="replicas"),
    pytest.param(THREE, {"mode": "standalone", "shards": 1, "replicas": 1}, "formed applies to cluster mode only", id="standalone"),
    pytest.param(THREE, {"formed": [{"primary": {"host": "redis-1"}}]}, "formed shard 0 must have a primary",
                 id="malformed"),
    pytest.param(THREE, {"formed": "redis-1"}, "formed must be a previous placement", id="formed-text"),
]


@pytest.mark.parametrize("hosts, kwargs, message", GROWTH_ERRORS)
def test_growth_errors(hosts, kwargs, message):
    kwargs = {"formed": redis_placement(THREE), **kwargs}
    with pytest.raises(AnsibleFilterError) as error:
        redis_placement(hosts, **kwargs)
    assert message in str(error.value)


def test_filter_module_exposes_redis_placement():
    assert FilterModule().filters() == {"redis_placement": redis_placement}


ERRORS = [
    pytest.param({"a": "1", "b": "2"}, {}, "shards must leave no zone with half", id="two-zones"),
    pytest.param({"a": "1", "b": "1", "c": "1"}, {}, "replicas puts each member", id="one-zone"),
    pytest.param(THREE, {"replicas": 3}, "replicas puts each member", id="too-many-replicas"),
    pytest.param(THREE, {"shards": 2}, "shards must be a whole number from 3", id="two-shards"),
    pytest.param(THREE, {"shards": "six"}, "shards must be a whole number", id="shards-text"),
    pytest.param(THREE, {"replicas": True}, "replicas must be a whole number", id="replicas-bool"),
    pytest.param(THREE, {"base_port": 70000}, "base_port must be", id="port-range"),
    pytest.param(THREE, {"mode": "sentinel"}, "mode must be one of", id="mode"),
    pytest.param([], {}, "_input (hosts) must name at least one host", id="no-hosts"),
    pytest.param("redis-1", {}, "_input (hosts) must be a mapping", id="string-hosts"),
    pytest.param([{"zone": "1"}], {}, "must list mappings with a 'host' key", id="no-host-key"),
    pytest.param([{"host": "a"}, {"host": "a"}], {}, "lists host 'a' twice", id="duplicate"),
    pytest.param({"a": ["1"]}, {}, "zone of 'a' must be", id="zone-list"),
    pytest.param({"a": "1"}, {"mode": "standalone", "shards": 1, "replicas": 1}, "replicas needs one host",
                 id="standalone-no-replica-host"),
    pytest.param({"a": "1", "b": "2"}, {"mode": "standalone", "shards": 2}, "shards must be a whole number from 1 to 1",
                 id="standalone-shards"),
]


@pytest.mark.parametrize("hosts, kwargs, message", ERRORS)
def test_errors(hosts, kwargs, message):
    with pytest.raises(AnsibleFilterError) as error:
        redis_placement(hosts, **kwargs)
    assert message in str(error.value)
    assert str(error.value).startswith("redis_placement: ")


def test_errors_name_the_callers_variables():
    """An error names the variable given in names=, not the filter's argument."""
    hosts = {"r1": "1", "r2": "2", "r3": "3"}
    with pytest.raises(AnsibleFilterError, match=r"^redis_placement: redis_shards must be a whole number from 3 to 1000; got 2$"):
        redis_placement(hosts, shards=2, names={"shards": "redis_shards"})
    with pytest.raises(AnsibleFilterError, match=r"^redis_placement: redis_replicas puts each member of a shard in its own zone"):
        redis_placement({"r1": "1", "r2": "1"}, shards=3, names={"replicas": "redis_replicas"})
    # Without a name for it, the argument keeps the filter's own name.
    with pytest.raises(AnsibleFilterError, match=r"^redis_placement: shards must be"):
        redis_placement(hosts, shards=2, names={"replicas": "redis_replicas"})
