# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""memory_budget: split a host's RAM between the OS and the data stores it runs.

The shares feed the other filters: postgresql_mb into pg_tune (as PGTune's
"Total Memory"), redis_mb into redis_memory_plan.  The shares never add up to
more than the host has.

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

import math
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: memory_budget
short_description: Split a host's RAM between an OS reserve, PostgreSQL and Redis instances
version_added: 0.1.0
author: onprem.datastores maintainers
description:
  - Splits a host's memory into an OS reserve, a PostgreSQL share and a Redis share (divided
    equally between the Redis instances), so that a host running both never plans more memory
    than it has. C(os_reserve_mb + postgresql_mb + redis_mb <= total_mb) always holds.
  - OS reserve - O(os_reserve_mb) when given, else the larger of O(os_reserve_min_mb) (512) and
    O(os_reserve_percent) (10 %) of the total, rounded up. It covers the kernel, sshd, the
    monitoring agents and backup tools.
  - The rest goes to PostgreSQL alone, to Redis alone, or, when both run, O(postgresql_percent)
    (50 %) to PostgreSQL and the remainder to Redis.
  - Pass C(postgresql_mb) to P(onprem.datastores.pg_tune#filter) and C(redis_mb) with the instance
    count to P(onprem.datastores.redis_memory_plan#filter).
positional: _input
options:
  _input:
    description: The host's memory in MB (C(ansible_facts.memtotal_mb)). A whole number.
    type: int
    required: true
  postgresql:
    description: Whether the host runs PostgreSQL.
    type: bool
    default: true
  redis_instances:
    description: Number of Redis instances on the host (0 for none).
    type: int
    default: 0
  os_reserve_mb:
    description: Fixed OS reserve in MB; overrides O(os_reserve_percent) and O(os_reserve_min_mb).
    type: int
  os_reserve_percent:
    description: OS reserve as a percentage of the total (0-90).
    type: int
    default: 10
  os_reserve_min_mb:
    description: Smallest OS reserve in MB.
    type: int
    default: 512
  postgresql_percent:
    description: PostgreSQL's percentage of what is left after the OS reserve when both run (1-99).
    type: int
    default: 50
notes:
  - PostgreSQL's share is the memory PGTune calls "Total Memory" - shared_buffers plus the page
    cache PostgreSQL relies on (effective_cache_size) plus work_mem. Redis memory is resident and
    never available as page cache, so it is taken out first.
  - Errors when PostgreSQL's share is below 512 MB (PGTune's minimum) or a Redis instance would get
    less than 128 MB (the smallest share redis_memory_plan can plan with its defaults).
"""

EXAMPLES = r"""
- name: Split a 16 GB host running PostgreSQL and two Redis instances
  ansible.builtin.debug:
    msg: "{{ 16384 | onprem.datastores.memory_budget(postgresql=true, redis_instances=2) }}"
  # {os_reserve_mb: 1639, postgresql_mb: 7372, redis_mb: 7372, redis_per_instance_mb: 3686, ...}

- name: Plan PostgreSQL from its share
  ansible.builtin.set_fact:
    __postgresql_tuning: >-
      {{ (ansible_facts.memtotal_mb | onprem.datastores.memory_budget(redis_instances=1)).postgresql_mb
         | onprem.datastores.pg_tune(ansible_facts.processor_vcpus) }}
"""

RETURN = r"""
_value:
  description: The split, in MB.
  type: dict
  contains:
    total_mb:
      description: The input.
      type: int
    os_reserve_mb:
      description: Memory left to the OS.
      type: int
    postgresql_mb:
      description: PostgreSQL's share (0 when O(postgresql=false)).
      type: int
    redis_mb:
      description: All Redis instances together (redis_per_instance_mb * redis_instances).
      type: int
    redis_instances:
      description: The input.
      type: int
    redis_per_instance_mb:
      description: One Redis instance's share (0 when there are none).
      type: int
    unallocated_mb:
      description: What rounding left over (less than one MB per Redis instance).
      type: int
"""

FILTER = "memory_budget"
PG_MIN_MB = 512  # PGTune's minimum input
REDIS_MIN_MB = 128  # smallest share redis_memory_plan plans with its defaults


def _fail(argument: str, allowed: str, value: Any) -> AnsibleFilterError:
    return AnsibleFilterError(f"{FILTER}: {argument} must be {allowed}; got {value!r}")


def _whole(value: Any, argument: str, minimum: int, maximum: int = 0) -> int:
    allowed = f"a whole number from {minimum} to {maximum}" if maximum else f"a whole number >= {minimum}"
    number = value
    if isinstance(value, bool):
        raise _fail(argument, allowed, value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                raise _fail(argument, allowed, value) from None
            if not (math.isfinite(as_float) and as_float.is_integer()):
                raise _fail(argument, allowed, value)
            number = int(as_float)
    if not isinstance(number, int) or number < minimum or (maximum and number > maximum):
        raise _fail(argument, allowed, value)
    return int(number)


def memory_budget(
    total_mb: Any,
    postgresql: bool = True,
    redis_instances: Any = 0,
    os_reserve_mb: Any = None,
    os_reserve_percent: Any = 10,
    os_reserve_min_mb: Any = 512,
    postgresql_percent: Any = 50,
) -> dict:
    """Return the OS reserve, PostgreSQL's share and Redis's share of total_mb."""
    total = _whole(total_mb, "total_mb (the host's memory in MB)", 1)
    if not isinstance(postgresql, bool):
        raise _fail("postgresql", "true or false", postgresql)
    instances = _whole(redis_instances, "redis_instances", 0)
    if not postgresql and instances == 0:
        raise _fail("postgresql/redis_instances", "PostgreSQL, at least one Redis instance, or both", (postgresql, instances))
    if os_reserve_mb is None:
        percent = _whole(os_reserve_percent, "os_reserve_percent", 0, 90)
        minimum = _whole(os_reserve_min_mb, "os_reserve_min_mb", 0)
        os_reserve = max(minimum, math.ceil(total * percent / 100))
    else:
        os_reserve = _whole(os_reserve_mb, "os_reserve_mb", 0)
    pg_percent = _whole(postgresql_percent, "postgresql_percent", 1, 99)

    available = total - os_reserve
    if available <= 0:
        raise _fail("total_mb", f"more than the OS reserve of {os_reserve} MB", total_mb)

    if postgresql and instances:
        postgresql_mb = available * pg_percent // 100
        redis_total = available - postgresql_mb
    elif postgresql:
        postgresql_mb, redis_total = available, 0
    else:
        postgresql_mb, redis_total = 0, available

    per_instance = redis_total // instances if instances else 0
    if postgresql and postgresql_mb < PG_MIN_MB:
        raise _fail(
            "total_mb",
            f"large enough to leave PostgreSQL {PG_MIN_MB} MB (PGTune's minimum) after the OS reserve of "
            f"{os_reserve} MB and Redis; PostgreSQL's share is {postgresql_mb} MB",
            total_mb,
        )
    if instances and per_instance < REDIS_MIN_MB:
        raise _fail(
            "total_mb/redis_instances",
            f"enough for {REDIS_MIN_MB} MB per Redis instance; each would get {per_instance} MB",
            (total_mb, redis_instances),
        )
    redis_mb = per_instance * instances
    return {
        "total_mb": total,
        "os_reserve_mb": os_reserve,
        "postgresql_mb": postgresql_mb,
        "redis_mb": redis_mb,
        "redis_instances": instances,
        "redis_per_instance_mb": per_instance,
        "unallocated_mb": available - postgresql_mb - redis_mb,
    }


class FilterModule:
    """onprem.datastores.memory_budget"""

    def filters(self) -> dict:
        return {"memory_budget": memory_budget}
