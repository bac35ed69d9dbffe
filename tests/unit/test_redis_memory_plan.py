# -*- coding: utf-8 -*-
"""redis_memory_plan: worked cases, the host worst case never above budget, and an error table."""

import itertools

import pytest
from ansible.errors import AnsibleFilterError

from memory_budget import memory_budget
from redis_memory_plan import FilterModule, redis_memory_plan


def test_one_instance_on_8gb_worked_by_hand():
    # share 8192; reserves 10 % = 819 each; replica buffer 8192/32 -> capped 256, soft 64;
    # backlog 8192/64 = 128; replication 256 + 128 = 384; fixed 819 + 819 + 384 = 2022
    # maxmemory + cow (100 % of maxmemory) = 8192 - 2022 = 6170 -> maxmemory 3085
    result = redis_memory_plan(8192, 1)
    assert result["config"] == {
        "maxmemory": "3085mb",
        "maxmemory-clients": "409mb",
        "client-output-buffer-limit": "replica 256mb 64mb 60",
        "repl-backlog-size": "128mb",
    }
    plan = result["plan"]
    assert (plan["reserved_mb"], plan["fragmentation_reserved_mb"]) == (819, 819)
    assert (plan["replication_buffers_mb"], plan["cow_mb"]) == (384, 3085)
    assert plan["worst_case_host_mb"] == 8192
    assert plan["headroom_mb"] == 0


def test_seed_16gb_host_redis_only_three_instances():
    budget = memory_budget(16384, postgresql=False, redis_instances=3)
    plan = redis_memory_plan(budget["redis_mb"], 3)["plan"]
    # one fork at a time: the copy-on-write allowance is shared, so each instance gets more
    assert plan["maxmemory_mb"] == 2778
    assert plan["worst_case_host_mb"] <= budget["redis_mb"]


def test_no_persistence_no_replication_never_forks():
    plan = redis_memory_plan(8192, 1, persistence="none", replication=False)["plan"]
    assert plan["forks"] is False
    assert plan["cow_mb"] == 0
    assert plan["concurrent_forks"] == 0
    assert plan["replication_buffers_mb"] == 0
    # 8192 - 819 - 819 = 6554
    assert plan["maxmemory_mb"] == 6554


@pytest.mark.parametrize("persistence, replication", [("rdb", False), ("aof", False), ("none", True)])
def test_any_fork_source_counts_copy_on_write(persistence, replication):
    plan = redis_memory_plan(8192, 2, persistence=persistence, replication=replication)["plan"]
    assert plan["forks"] is True
    assert plan["cow_mb"] == plan["maxmemory_mb"]


def test_azure_reserve_percentages_are_configurable():
    plan = redis_memory_plan(10000, 1, reserved_percent=20, fragmentation_percent=5, cow_percent=50)["plan"]
    assert (plan["reserved_mb"], plan["fragmentation_reserved_mb"]) == (2000, 500)
    assert plan["cow_mb"] == -(-plan["maxmemory_mb"] * 50 // 100)


def test_explicit_replication_sizes():
    result = redis_memory_plan(16384, 2, replicas=2, repl_backlog_mb=64, replica_buffer_mb=512)
    assert result["config"]["client-output-buffer-limit"] == "replica 512mb 128mb 60"
    assert result["config"]["repl-backlog-size"] == "64mb"
    assert result["plan"]["replication_buffers_mb"] == 2 * 512 + 64


def test_small_shares_scale_replication_buffers():
    result = redis_memory_plan(1024, 4)
    assert result["config"]["client-output-buffer-limit"] == "replica 16mb 4mb 60"
    assert result["config"]["repl-backlog-size"] == "4mb"


def test_worst_case_never_exceeds_budget_and_is_tight():
    checked = 0
    for budget, instances, persistence, replication, cow, forks in itertools.product(
            [300, 512, 1000, 2048, 4096, 7372, 8192, 14745, 16384, 30000, 65536, 131072],
            range(1, 13), ("rdb", "aof", "none"), (True, False), (0, 30, 100), (1, 2, 3)):
        if forks > instances:
            continue
        try:
            result = redis_memory_plan(budget, instances, persistence=persistence, replication=replication,
                                       cow_percent=cow, concurrent_forks=forks)
        except AnsibleFilterError:
            continue  # too small: refused rather than over-planned
        checked += 1
        plan = result["plan"]
        steady = (plan["maxmemory_mb"] + plan["reserved_mb"] + plan["fragmentation_reserved_mb"]
                  + plan["replication_buffers_mb"])
        assert plan["instance_steady_mb"] == steady
        assert plan["worst_case_host_mb"] == instances * steady + plan["concurrent_forks"] * plan["cow_mb"]
        assert plan["worst_case_host_mb"] <= budget
        assert plan["clients_mb"] <= plan["reserved_mb"]
        assert result["config"]["maxmemory"] == "%dmb" % plan["maxmemory_mb"]
        # one more MB of maxmemory per instance would not fit
        bigger = plan["maxmemory_mb"] + 1
        cow_bigger = -(-bigger * (cow if plan["forks"] else 0) // 100)
        assert instances * (steady + 1) + plan["concurrent_forks"] * cow_bigger > budget
    assert checked > 2000


def test_filter_module_exposes_redis_memory_plan():
    assert FilterModule().filters() == {"redis_memory_plan": redis_memory_plan}


ERRORS = [
    pytest.param((8192, 0), {}, "instances", ">= 1", id="zero-instances"),
    pytest.param((8192, -1), {}, "instances", ">= 1", id="negative-instances"),
    pytest.param((8192, 1.5), {}, "instances", "whole number", id="fractional-instances"),
    pytest.param((-8192, 1), {}, "memory_mb", ">= 1", id="negative-memory"),
    pytest.param((8192.5, 1), {}, "memory_mb", "whole number", id="fractional-memory"),
    pytest.param(("8GB", 1), {}, "memory_mb", "whole number", id="memory-with-unit"),
    pytest.param((True, 1), {}, "memory_mb", "whole number", id="memory-bool"),
    pytest.param((100, 1), {}, "memory_mb/instances", "32 MB of maxmemory", id="too-small"),
    pytest.param((1024, 20), {}, "memory_mb/instances", "32 MB of maxmemory", id="too-many-instances"),
    pytest.param((8192, 1), {"persistence": "snapshot"}, "persistence", "rdb, aof, none", id="unknown-persistence"),
    pytest.param((8192, 1), {"replication": "yes"}, "replication", "true or false", id="replication-not-bool"),
    pytest.param((8192, 1), {"reserved_percent": 0}, "reserved_percent", "1 to 50", id="no-reserve"),
    pytest.param((8192, 1), {"fragmentation_percent": 60}, "fragmentation_percent", "0 to 50",
                 id="fragmentation-too-big"),
    pytest.param((8192, 1), {"cow_percent": 101}, "cow_percent", "0 to 100", id="cow-over-100"),
    pytest.param((8192, 2), {"concurrent_forks": 3}, "concurrent_forks", "1 to 2", id="more-forks-than-instances"),
    pytest.param((8192, 1), {"replicas": 0}, "replicas", "1 to 16", id="zero-replicas"),
    pytest.param((8192, 1), {"repl_backlog_mb": 0}, "repl_backlog_mb", ">= 1", id="zero-backlog"),
    pytest.param((8192, 1), {"clients_percent": 0}, "clients_percent", "1 to 100", id="no-client-memory"),
]


@pytest.mark.parametrize("args, kwargs, argument, allowed", ERRORS)
def test_bad_input_names_argument_and_allowed_values(args, kwargs, argument, allowed):
    with pytest.raises(AnsibleFilterError) as error:
        redis_memory_plan(*args, **kwargs)
    message = str(error.value)
    assert message.startswith("redis_memory_plan: ")
    assert argument in message
    assert allowed in message


def test_every_memory_budget_share_can_be_planned():
    """What memory_budget hands out, redis_memory_plan can plan with its defaults."""
    checked = 0
    for total, instances, postgresql in itertools.product(range(1024, 131073, 1531), range(1, 9), (True, False)):
        try:
            budget = memory_budget(total, postgresql=postgresql, redis_instances=instances)
        except AnsibleFilterError:
            continue
        plan = redis_memory_plan(budget["redis_mb"], instances)["plan"]
        assert plan["worst_case_host_mb"] <= budget["redis_mb"]
        checked += 1
    assert checked > 1000


def test_errors_name_the_callers_variables():
    """An error names the variable given in names=, not the filter's argument."""
    with pytest.raises(AnsibleFilterError, match=r"^redis_memory_plan: redis_memory_mb must be a whole number >= 1; got 0$"):
        redis_memory_plan(0, 2, names={"memory_mb": "redis_memory_mb"})
    with pytest.raises(AnsibleFilterError, match=r"^redis_memory_plan: redis_memory_mb on this host must be large enough"):
        redis_memory_plan(64, 4, names={"memory_mb/instances": "redis_memory_mb on this host"})
    with pytest.raises(AnsibleFilterError, match=r"^redis_memory_plan: memory_mb \(MB for all Redis instances\) must be"):
        redis_memory_plan(0, 2)
