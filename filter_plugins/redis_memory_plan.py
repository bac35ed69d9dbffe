# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""redis_memory_plan: maxmemory and the headroom Azure Cache for Redis reserves, for N instances.

Azure keeps memory outside the dataset with maxmemory-reserved (non-cache use:
client and replication buffers, forks) and maxfragmentationmemory-reserved
(allocator fragmentation).  Redis has neither setting, so this filter sizes
maxmemory such that the host's worst case fits the budget:

    instances * (maxmemory + reserved + fragmentation + replication buffers)
      + concurrent_forks * copy-on-write of one instance  <=  budget

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

import math
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: redis_memory_plan
short_description: Redis maxmemory, client and replication buffers, with Azure-style reserves
version_added: 0.1.0
author: onprem.datastores maintainers
description:
  - Plans the memory of O(instances) equal Redis 7 instances sharing a budget of O(_input) MB, and
    returns their Redis settings and the figures behind them.
  - Each instance's share is split into C(maxmemory) (the dataset), a reserve for non-cache use
    (Azure's C(maxmemory-reserved), O(reserved_percent) of the share), a reserve for allocator
    fragmentation (Azure's C(maxfragmentationmemory-reserved), O(fragmentation_percent) of the
    share) and the replication buffers (one replica output buffer at its hard limit per replica,
    plus the backlog).
  - Forks - BGSAVE for C(rdb), the AOF rewrite for C(aof), and the full resynchronisation of a
    replica with O(replication=true) - copy every page the parent writes while the child runs.
    The plan keeps O(cow_percent) of C(maxmemory) free for O(concurrent_forks) instances forking
    at the same time.
  - Guarantee - C(instances * (maxmemory + reserved + fragmentation + replication buffers) +
    concurrent_forks * cow <= budget). C(maxmemory-clients) is carved out of the non-cache reserve.
positional: _input, instances
options:
  _input:
    description:
      - Memory for all Redis instances on the host, in MB (C(redis_mb) of
        P(onprem.datastores.memory_budget#filter)). A whole number.
    type: int
    required: true
  instances:
    description: Redis instances sharing the budget; at least 1.
    type: int
    required: true
  persistence:
    description: C(rdb) snapshots, C(aof) append-only file (rewrites fork too) or C(none).
    type: str
    default: rdb
    choices: [rdb, aof, none]
  replication:
    description:
      - Whether the instances have replicas. Counts the replication buffers and the fork of a
        full resynchronisation. With C(false) the replication settings are still returned but not
        counted - plan again before adding a replica.
    type: bool
    default: true
  reserved_percent:
    description: Non-cache reserve, percent of the instance's share (Azure's maxmemory-reserved); 1-50.
    type: int
    default: 10
  fragmentation_percent:
    description: Fragmentation reserve, percent of the instance's share (Azure's maxfragmentationmemory-reserved); 0-50.
    type: int
    default: 10
  cow_percent:
    description:
      - Part of C(maxmemory) that one fork may copy, 0-100. 100 is the true worst case (every page
        written while the child runs). Lower it only after measuring C(rdb_last_cow_size) /
        C(aof_last_cow_size) in C(INFO persistence) under real load.
    type: int
    default: 100
  concurrent_forks:
    description:
      - Instances that may fork at the same time (1 to O(instances)). The default of one assumes
        the role staggers the instances' snapshots; Redis does not coordinate forks by itself.
    type: int
    default: 1
  replicas:
    description: Replicas attached to each primary (1-16); each holds one output buffer.
    type: int
    default: 1
  repl_backlog_mb:
    description: C(repl-backlog-size) in MB. Default - the share / 64, from 1 to 256.
    type: int
  replica_buffer_mb:
    description:
      - Hard limit of a replica's output buffer in MB. Default - the share / 32, from 16 to 256
        (Redis's own default is 256). The soft limit is a quarter of it for 60 seconds.
    type: int
  clients_percent:
    description: Part of the non-cache reserve given to C(maxmemory-clients), 1-100.
    type: int
    default: 50
  names:
    description:
      - What to call the arguments in error messages, e.g. C(names=dict(memory_mb='redis_memory_mb')), so that an
        error names the variable the caller set. Keys - memory_mb, instances, memory_mb/instances,
        reserved_percent, fragmentation_percent, and the other options' names.
    type: dict
    default: {}
notes:
  - Redis counts normal clients' buffers in used_memory; C(maxmemory-clients) bounds them so they
    stay inside the non-cache reserve even when C(maxmemory-policy) is C(noeviction).
  - The replication buffer counted is the backlog plus every replica's hard limit; Redis 7 shares
    one buffer between them, so the real figure is lower.
"""

EXAMPLES = r"""
- name: Plan one Redis instance with RDB and a replica on 8 GB
  ansible.builtin.debug:
    msg: "{{ 8192 | onprem.datastores.redis_memory_plan(1) }}"
  # config: maxmemory 3085mb, maxmemory-clients 409mb,
  #         client-output-buffer-limit 'replica 256mb 64mb 60', repl-backlog-size 128mb

- name: Write the planned memory settings into a drop-in of each instance
  vars:
    __redis_plan: "{{ redis_memory_mb | onprem.datastores.redis_memory_plan(redis_instances | length,
                                                                   persistence='aof') }}"
  ansible.builtin.copy:
    dest: "/etc/redis/{{ item.name }}.d/10-memory.conf"
    content: |
      {% for directive, value in __redis_plan.config.items() %}
      {{ directive }} {{ value }}
      {% endfor %}
    mode: "0640"
  loop: "{{ redis_instances }}"
"""

RETURN = r"""
_value:
  description: Settings and figures for one instance (all instances are equal) and the host.
  type: dict
  contains:
    config:
      description: Redis directives for each instance, values in Redis units.
      type: dict
      contains:
        maxmemory:
          description: Dataset limit, for example C(3085mb).
          type: str
        maxmemory-clients:
          description: Limit of all normal clients' memory (Redis 7), for example C(409mb).
          type: str
        client-output-buffer-limit:
          description: The replica class, for example C(replica 256mb 64mb 60).
          type: str
        repl-backlog-size:
          description: Replication backlog, for example C(128mb).
          type: str
    plan:
      description: The figures, in MB.
      type: dict
      contains:
        budget_mb:
          description: The input budget for all instances.
          type: int
        instances:
          description: The input.
          type: int
        instance_share_mb:
          description: budget_mb / instances, the base of the percentages.
          type: int
        maxmemory_mb:
          description: C(maxmemory).
          type: int
        reserved_mb:
          description: Non-cache reserve (Azure's maxmemory-reserved).
          type: int
        fragmentation_reserved_mb:
          description: Fragmentation reserve (Azure's maxfragmentationmemory-reserved).
          type: int
        clients_mb:
          description: C(maxmemory-clients), part of reserved_mb.
          type: int
        replication_buffers_mb:
          description: Backlog plus one hard limit per replica (0 without replication).
          type: int
        repl_backlog_mb:
          description: C(repl-backlog-size).
          type: int
        replica_buffer_hard_mb:
          description: Hard limit of one replica output buffer.
          type: int
        replica_buffer_soft_mb:
          description: Soft limit of one replica output buffer.
          type: int
        forks:
          description: Whether the instances fork (persistence or replication).
          type: bool
        concurrent_forks:
          description: Forks counted at the same time (0 when the instances never fork).
          type: int
        cow_mb:
          description: Copy-on-write counted for one forking instance.
          type: int
        instance_steady_mb:
          description: maxmemory + reserves + replication buffers of one instance.
          type: int
        worst_case_host_mb:
          description: instances * instance_steady_mb + concurrent_forks * cow_mb; never above budget_mb.
          type: int
        headroom_mb:
          description: budget_mb - worst_case_host_mb.
          type: int
"""

FILTER = "redis_memory_plan"
PERSISTENCE = ("rdb", "aof", "none")
MIN_MAXMEMORY_MB = 32


class _ArgumentError(AnsibleFilterError):
    """An argument the filter refuses; redis_memory_plan renames it after the caller's variable."""

    def __init__(self, argument: str, allowed: str, value: Any) -> None:
        super().__init__(f"{FILTER}: {argument} must be {allowed}; got {value!r}")
        self.argument = argument
        self.detail = f"must be {allowed}; got {value!r}"


def _fail(argument: str, allowed: str, value: Any) -> AnsibleFilterError:
    return _ArgumentError(argument, allowed, value)


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


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def redis_memory_plan(memory_mb: Any, instances: Any, names: Any = None, **options: Any) -> dict:
    """Return Redis settings and the memory plan for `instances` equal instances (options: see _plan)."""
    try:
        return _plan(memory_mb, instances, **options)
    except _ArgumentError as error:
        key = error.argument.split(" ")[0]
        name = (names or {}).get(key) if isinstance(names, dict) else None
        if not name:
            raise
        raise AnsibleFilterError(f"{FILTER}: {name} {error.detail}") from None


def _plan(
    memory_mb: Any,
    instances: Any,
    persistence: str = "rdb",
    replication: bool = True,
    reserved_percent: Any = 10,
    fragmentation_percent: Any = 10,
    cow_percent: Any = 100,
    concurrent_forks: Any = 1,
    replicas: Any = 1,
    repl_backlog_mb: Any = None,
    replica_buffer_mb: Any = None,
    clients_percent: Any = 50,
) -> dict:
    """The plan itself; redis_memory_plan names the caller's variables in its errors."""
    budget = _whole(memory_mb, "memory_mb (MB for all Redis instances)", 1)
    count = _whole(instances, "instances", 1)
    if not isinstance(persistence, str) or persistence.strip().lower() not in PERSISTENCE:
        raise _fail("persistence", "one of " + ", ".join(PERSISTENCE), persistence)
    persistence = persistence.strip().lower()
    if not isinstance(replication, bool):
        raise _fail("replication", "true or false", replication)
    reserved_pct = _whole(reserved_percent, "reserved_percent", 1, 50)
    fragmentation_pct = _whole(fragmentation_percent, "fragmentation_percent", 0, 50)
    cow_pct = _whole(cow_percent, "cow_percent", 0, 100)
    forks_at_once = _whole(concurrent_forks, "concurrent_forks", 1, count)
    replica_count = _whole(replicas, "replicas", 1, 16)
    clients_pct = _whole(clients_percent, "clients_percent", 1, 100)

    share = budget // count
    reserved = share * reserved_pct // 100
    fragmentation = share * fragmentation_pct // 100
    clients = reserved * clients_pct // 100

    if repl_backlog_mb is None:
        backlog = _clamp(share // 64, 1, 256)
    else:
        backlog = _whole(repl_backlog_mb, "repl_backlog_mb", 1)
    if replica_buffer_mb is None:
        replica_hard = _clamp(share // 32, 16, 256)
    else:
        replica_hard = _whole(replica_buffer_mb, "replica_buffer_mb", 1)
    replica_soft = max(replica_hard // 4, 1)
    replication_buffers = replica_count * replica_hard + backlog if replication else 0

    forks = persistence != "none" or replication
    forking = forks_at_once if forks else 0
    cow_share = cow_pct if forks else 0

    steady_extra = reserved + fragmentation + replication_buffers
    spare = budget - count * steady_extra
    maxmemory = spare * 100 // (100 * count + forking * cow_share) if spare > 0 else 0

    def cow_of(dataset_mb: int) -> int:
        return math.ceil(dataset_mb * cow_share / 100)

    def worst_case(dataset_mb: int) -> int:
        return count * (dataset_mb + steady_extra) + forking * cow_of(dataset_mb)

    while maxmemory > 0 and worst_case(maxmemory) > budget:
        maxmemory -= 1
    if maxmemory < MIN_MAXMEMORY_MB or clients < 1:
        raise _fail(
            "memory_mb/instances",
            f"large enough to leave each instance {MIN_MAXMEMORY_MB} MB of maxmemory after reserves, "
            f"replication buffers and copy-on-write; {budget} MB for {count} instance(s) leaves {maxmemory} MB",
            (memory_mb, instances),
        )

    worst = worst_case(maxmemory)
    return {
        "config": {
            "maxmemory": f"{maxmemory}mb",
            "maxmemory-clients": f"{clients}mb",
            "client-output-buffer-limit": f"replica {replica_hard}mb {replica_soft}mb 60",
            "repl-backlog-size": f"{backlog}mb",
        },
        "plan": {
            "budget_mb": budget,
            "instances": count,
            "instance_share_mb": share,
            "maxmemory_mb": maxmemory,
            "reserved_mb": reserved,
            "fragmentation_reserved_mb": fragmentation,
            "clients_mb": clients,
            "replication_buffers_mb": replication_buffers,
            "repl_backlog_mb": backlog,
            "replica_buffer_hard_mb": replica_hard,
            "replica_buffer_soft_mb": replica_soft,
            "forks": forks,
            "concurrent_forks": forking,
            "cow_mb": cow_of(maxmemory),
            "instance_steady_mb": maxmemory + steady_extra,
            "worst_case_host_mb": worst,
            "headroom_mb": budget - worst,
        },
    }


class FilterModule:
    """onprem.datastores.redis_memory_plan"""

    def filters(self) -> dict:
        return {"redis_memory_plan": redis_memory_plan}
