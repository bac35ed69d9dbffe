# -*- coding: utf-8 -*-
"""memory_budget: shares, the never-more-than-the-host invariant, and an error table."""

import itertools

import pytest
from ansible.errors import AnsibleFilterError

from memory_budget import FilterModule, memory_budget

CASES = [
    # total, kwargs, os_reserve, postgresql, redis total, redis per instance
    pytest.param(16384, {}, 1639, 14745, 0, 0, id="16GB-postgresql-only"),
    pytest.param(16384, {"redis_instances": 1}, 1639, 7372, 7373, 7373, id="16GB-both-one-redis"),
    pytest.param(16384, {"redis_instances": 2}, 1639, 7372, 7372, 3686, id="16GB-both-two-redis"),
    pytest.param(16384, {"postgresql": False, "redis_instances": 3}, 1639, 0, 14745, 4915, id="16GB-redis-only"),
    pytest.param(4096, {}, 512, 3584, 0, 0, id="4GB-minimum-reserve-wins"),
    pytest.param(2048, {"redis_instances": 1}, 512, 768, 768, 768, id="2GB-both"),
    pytest.param(16384, {"os_reserve_mb": 1024}, 1024, 15360, 0, 0, id="fixed-os-reserve"),
    pytest.param(16384, {"os_reserve_percent": 20, "os_reserve_min_mb": 0}, 3277, 13107, 0, 0, id="os-20-percent"),
    pytest.param(32768, {"redis_instances": 2, "postgresql_percent": 75}, 3277, 22118, 7372, 3686,
                 id="postgresql-75-percent"),
    pytest.param("16384", {"redis_instances": "1"}, 1639, 7372, 7373, 7373, id="numeric-strings"),
]


@pytest.mark.parametrize("total, kwargs, os_reserve, postgresql, redis, per_instance", CASES)
def test_shares(total, kwargs, os_reserve, postgresql, redis, per_instance):
    result = memory_budget(total, **kwargs)
    assert result["os_reserve_mb"] == os_reserve
    assert result["postgresql_mb"] == postgresql
    assert result["redis_mb"] == redis
    assert result["redis_per_instance_mb"] == per_instance
    assert result["os_reserve_mb"] + result["postgresql_mb"] + result["redis_mb"] + result["unallocated_mb"] \
        == int(total)


def test_never_plans_more_than_the_host_has():
    checked = 0
    for total, instances, postgresql, percent in itertools.product(
            range(1024, 262145, 997), range(0, 9), (True, False), (10, 50, 90)):
        if not postgresql and instances == 0:
            continue
        try:
            result = memory_budget(total, postgresql=postgresql, redis_instances=instances, postgresql_percent=percent)
        except AnsibleFilterError:
            continue  # too small for this combination: refused, not over-planned
        checked += 1
        assert result["os_reserve_mb"] + result["postgresql_mb"] + result["redis_mb"] <= total
        assert result["unallocated_mb"] >= 0
        assert result["redis_mb"] == result["redis_per_instance_mb"] * instances
        assert result["os_reserve_mb"] >= max(512, total // 10)
    assert checked > 8000


def test_filter_module_exposes_memory_budget():
    assert FilterModule().filters() == {"memory_budget": memory_budget}


ERRORS = [
    pytest.param((-1,), {}, "total_mb", ">= 1", id="negative"),
    pytest.param((0,), {}, "total_mb", ">= 1", id="zero"),
    pytest.param((1.5,), {}, "total_mb", "whole number", id="fraction"),
    pytest.param(("16GB",), {}, "total_mb", "whole number", id="text-with-unit"),
    pytest.param((True,), {}, "total_mb", "whole number", id="bool"),
    pytest.param((None,), {}, "total_mb", "whole number", id="none"),
    pytest.param((512,), {}, "total_mb", "OS reserve of 512 MB", id="all-taken-by-os"),
    pytest.param((1000,), {}, "total_mb", "512 MB (PGTune's minimum)", id="postgresql-share-too-small"),
    pytest.param((1024,), {"redis_instances": 1}, "total_mb", "512 MB (PGTune's minimum)",
                 id="postgresql-share-too-small-with-redis"),
    pytest.param((1024,), {"postgresql": False, "redis_instances": 16}, "redis_instances", "128 MB per Redis",
                 id="too-many-redis"),
    pytest.param((16384,), {"postgresql": False}, "redis_instances", "at least one Redis instance",
                 id="nothing-to-plan"),
    pytest.param((16384,), {"postgresql": "yes"}, "postgresql", "true or false", id="postgresql-not-bool"),
    pytest.param((16384,), {"redis_instances": -1}, "redis_instances", ">= 0", id="negative-instances"),
    pytest.param((16384,), {"redis_instances": 1.5}, "redis_instances", "whole number", id="fractional-instances"),
    pytest.param((16384,), {"os_reserve_percent": 95}, "os_reserve_percent", "0 to 90", id="os-percent-too-big"),
    pytest.param((16384,), {"os_reserve_mb": -5}, "os_reserve_mb", ">= 0", id="os-reserve-negative"),
    pytest.param((16384,), {"redis_instances": 1, "postgresql_percent": 100}, "postgresql_percent", "1 to 99",
                 id="postgresql-percent-100"),
]


@pytest.mark.parametrize("args, kwargs, argument, allowed", ERRORS)
def test_bad_input_names_argument_and_allowed_values(args, kwargs, argument, allowed):
    with pytest.raises(AnsibleFilterError) as error:
        memory_budget(*args, **kwargs)
    message = str(error.value)
    assert message.startswith("memory_budget: ")
    assert argument in message
    assert allowed in message
