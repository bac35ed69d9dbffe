# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_tune: PGTune's postgresql.conf memory/planner settings, as an Ansible filter.

Port of PGTune (https://github.com/le0pard/pgtune), file
``src/features/configuration/configurationSlice.js`` (the selectors) and the
value formatter in ``src/common/components/configurationView/index.jsx``.
Ported revision: the newest one we could read, which has nvme storage, the
8GB maintenance_work_mem cap, huge_pages from shared_buffers, the 4MB work_mem
floor, jit, wal_compression, autovacuum_max_workers/autovacuum_work_mem,
io_method/io_workers (PostgreSQL 18) and the "database size relative to RAM"
input.  Only the Linux branch is ported: these VMs run Debian 12.

The arithmetic deliberately repeats PGTune's JavaScript step by step (same
float divisions, same Math.floor points) so every value prints exactly what
the PGTune web page prints.  docs/tuning.md explains each rule.

Self-contained on purpose: Ansible loads every file of filter_plugins/ as a
plugin, both from a clone (filter_plugins = ./filter_plugins) and as the
collection (plugins/filter), so no sibling import is needed in either mode.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: pg_tune
short_description: PostgreSQL memory and planner settings from RAM and CPUs, as PGTune computes them
version_added: 0.1.0
author: onprem.datastores maintainers
description:
  - Returns the C(postgresql.conf) settings that PGTune (U(https://pgtune.leopard.in.ua), source
    U(https://github.com/le0pard/pgtune) C(src/features/configuration/configurationSlice.js))
    prints for PostgreSQL on Linux, for the same inputs, with the same values and units.
  - The input is the memory PostgreSQL may use, in MB. The roles pass the memory planned for
    PostgreSQL (see P(onprem.datastores.memory_budget#filter)), by default the host's RAM.
  - Every setting PGTune prints is returned, and only those; settings PGTune leaves at the
    PostgreSQL default (for example C(jit) for C(dw)) are absent from the result.
  - Bad input raises an error naming the argument and the allowed values.
  - To size C(vm.nr_hugepages) for the result use P(onprem.datastores.pg_hugepages#filter).
positional: _input, cpus
options:
  _input:
    description:
      - Memory PostgreSQL may use, in MB (PGTune's "Total Memory"). A whole number, int or
        numeric string; at least 512 (PGTune's minimum).
    type: int
    required: true
  cpus:
    description:
      - CPUs PostgreSQL may use. C(null) means unknown, as when PGTune's CPU field is empty
        (no parallel settings are printed then).
    type: int
    required: true
  workload:
    description: PGTune's "DB Type".
    type: str
    default: web
    choices: [web, oltp, dw, desktop, mixed]
  storage:
    description: PGTune's "Data Storage".
    type: str
    default: ssd
    choices: [ssd, hdd, san, nvme]
  max_connections:
    description:
      - Client connections. C(null) gives PGTune's default for the workload (web 200, oltp 300,
        dw 40, desktop 20, mixed 100).
      - At least 20 (PGTune's minimum). At most what PostgreSQL starts with - 262143 backends in
        all, less the autovacuum, worker and WAL sender slots (262121 below 4 CPUs).
    type: int
  pg_version:
    description: PostgreSQL major version (PGTune's "DB version"). The collection installs 15.
    type: int
    default: 15
    choices: [10, 11, 12, 13, 14, 15, 16, 17, 18]
  db_size:
    description:
      - PGTune's database size relative to RAM. C(less_ram) the database fits in RAM,
        C(mid_ram) PGTune's default, C(greater_ram) the database is much larger than RAM.
      - Changes random_page_cost (C(less_ram)) and work_mem (+30 % for C(less_ram), -10 % for
        C(greater_ram)).
    type: str
    default: mid_ram
    choices: [less_ram, mid_ram, greater_ram]
notes:
  - Parity with PGTune is tested on RAM 1-128 GB x CPUs 1-16 x all workloads and storages
    against an independent transcription of PGTune (tests/unit/pgtune_oracle.py).
  - C(wal_compression=lz4) needs a PostgreSQL built with lz4; the PGDG and Debian packages are.
  - C(desktop) sets C(wal_level=minimal) and C(max_wal_senders=0), which rules out replication.
seealso:
  - name: PGTune
    description: The calculator this filter ports.
    link: https://pgtune.leopard.in.ua
"""

EXAMPLES = r"""
- name: Show what PGTune would print for the seeds' 16 GB / 4 vCPU web server
  ansible.builtin.debug:
    msg: "{{ 16384 | onprem.datastores.pg_tune(4, workload='web', storage='ssd') }}"
  # shared_buffers 4GB, effective_cache_size 12GB, work_mem 20560kB, huge_pages try, ...

- name: Render the settings into a conf.d drop-in
  ansible.builtin.copy:
    dest: /etc/postgresql/15/main/conf.d/10-tuning.conf
    content: |
      {% for name, value in (postgresql_memory_mb | onprem.datastores.pg_tune(ansible_facts.processor_vcpus,
                                                       workload=postgresql_workload)).items() %}
      {{ name }} = '{{ value }}'
      {% endfor %}
    mode: "0644"
"""

RETURN = r"""
_value:
  description:
    - C(postgresql.conf) parameter name to value, in PGTune's order. Sizes are strings in
      PostgreSQL units (C(4GB), C(16MB), C(20560kB)); counts are integers; costs are numbers.
    - Always present - C(max_connections), C(shared_buffers), C(effective_cache_size),
      C(maintenance_work_mem), C(checkpoint_completion_target), C(wal_buffers),
      C(default_statistics_target), C(random_page_cost), C(effective_io_concurrency),
      C(work_mem), C(huge_pages), C(wal_compression) (PostgreSQL 10+), C(min_wal_size),
      C(max_wal_size).
    - When PGTune prints them - C(jit) (web, oltp, mixed), C(autovacuum_max_workers) (16+ CPUs),
      C(autovacuum_work_mem) (maintenance_work_mem of 2GB or more), C(io_method) and
      C(io_workers) (PostgreSQL 18), C(max_worker_processes), C(max_parallel_workers_per_gather),
      C(max_parallel_workers), C(max_parallel_maintenance_workers) (4+ CPUs), C(wal_level) and
      C(max_wal_senders) (desktop).
  type: dict
"""

FILTER = "pg_tune"

WORKLOADS = ("web", "oltp", "dw", "desktop", "mixed")
STORAGES = ("ssd", "hdd", "san", "nvme")
PG_VERSIONS = tuple(range(10, 19))
DB_SIZES = ("less_ram", "mid_ram", "greater_ram")

MIN_MEMORY_MB = 512  # PGTune's form rejects less than 512 MB
MIN_CONNECTIONS = 20  # PGTune's form rejects fewer
MAX_BACKENDS = 262143  # PostgreSQL: max_connections + autovacuum + 1 + workers + WAL senders
PG_DEFAULT_AUTOVACUUM_MAX_WORKERS = 3
PG_DEFAULT_MAX_WAL_SENDERS = 10

KB_PER_MB = 1024
KB_PER_GB = 1024 * 1024

DEFAULT_MAX_CONNECTIONS = {"web": 200, "oltp": 300, "dw": 40, "desktop": 20, "mixed": 100}
MIN_WAL_SIZE_MB = {"web": 1024, "oltp": 2048, "dw": 4096, "desktop": 100, "mixed": 1024}
MAX_WAL_SIZE_MB = {"web": 4096, "oltp": 8192, "dw": 16384, "desktop": 2048, "mixed": 4096}
EFFECTIVE_IO_CONCURRENCY = {"hdd": 2, "ssd": 200, "san": 300, "nvme": 1000}
# PGTune's DEFAULT_DB_SETTINGS: max_worker_processes used by work_mem when no CPU count is given
DEFAULT_MAX_WORKER_PROCESSES = 8


def _fail(argument: str, allowed: str, value: Any) -> AnsibleFilterError:
    return AnsibleFilterError(f"{FILTER}: {argument} must be {allowed}; got {value!r}")


def _whole_number(value: Any, argument: str, allowed: str) -> int:
    """Accept int, integral float or numeric string; reject bool, fractions and text."""
    if isinstance(value, bool):
        raise _fail(argument, allowed, value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise _fail(argument, allowed, value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise _fail(argument, allowed, value) from None
        if math.isfinite(number) and number.is_integer():
            return int(number)
    raise _fail(argument, allowed, value)


def _bounded(value: Any, argument: str, minimum: int, maximum: Optional[int] = None, unit: str = "") -> int:
    if maximum is None:
        allowed = f"a whole number >= {minimum}{unit}"
    else:
        allowed = f"a whole number from {minimum} to {maximum}{unit}"
    number = _whole_number(value, argument, allowed)
    if number < minimum or (maximum is not None and number > maximum):
        raise _fail(argument, allowed, value)
    return number


def _choice(value: Any, argument: str, choices: tuple) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise _fail(argument, "one of " + ", ".join(choices), value)
    return value.strip().lower()


def _format_kb(value_kb: int) -> str:
    """PGTune's formatValue: the largest of GB, MB, kB that loses nothing."""
    if value_kb % KB_PER_GB == 0:
        return f"{value_kb // KB_PER_GB}GB"
    if value_kb % KB_PER_MB == 0:
        return f"{value_kb // KB_PER_MB}MB"
    return f"{value_kb}kB"


def _number(value: float) -> Any:
    """Print numbers as JavaScript does: 4 not 4.0, 1.1 stays 1.1."""
    return int(value) if float(value).is_integer() else value


def pg_tune(
    memory_mb: Any,
    cpus: Any,
    workload: str = "web",
    storage: str = "ssd",
    max_connections: Any = None,
    pg_version: Any = 15,
    db_size: str = "mid_ram",
) -> dict:
    """Return PGTune's postgresql.conf settings for PostgreSQL on Linux."""
    memory = _bounded(memory_mb, "memory_mb (MB of RAM for PostgreSQL)", MIN_MEMORY_MB, unit=" (PGTune's minimum is 512 MB)")
    cpu_count = None if cpus is None else _bounded(cpus, "cpus", 1)
    workload = _choice(workload, "workload", WORKLOADS)
    storage = _choice(storage, "storage", STORAGES)
    db_size = _choice(db_size, "db_size", DB_SIZES)
    version = _whole_number(pg_version, "pg_version", "one of " + ", ".join(map(str, PG_VERSIONS)))
    if version not in PG_VERSIONS:
        raise _fail("pg_version", "one of " + ", ".join(map(str, PG_VERSIONS)), pg_version)
    if max_connections is None:
        connections = DEFAULT_MAX_CONNECTIONS[workload]
    else:
        connections = _bounded(max_connections, "max_connections", MIN_CONNECTIONS, MAX_BACKENDS)

    total_kb = memory * KB_PER_MB

    # shared_buffers: 1/4 of RAM, 1/16 for desktop
    shared_buffers = math.floor(total_kb / 16) if workload == "desktop" else math.floor(total_kb / 4)

    # huge_pages: "try" once shared_buffers reaches 2GB
    huge_pages = "try" if shared_buffers >= 2 * KB_PER_GB else "off"

    # effective_cache_size: 3/4 of RAM, 1/4 for desktop
    if workload == "desktop":
        effective_cache_size = math.floor(total_kb / 4)
    else:
        effective_cache_size = math.floor((total_kb * 3) / 4)

    # maintenance_work_mem: 1/16 of RAM, 1/8 for dw, capped at 8GB
    maintenance_work_mem = math.floor(total_kb / 8) if workload == "dw" else math.floor(total_kb / 16)
    if maintenance_work_mem >= 8 * KB_PER_GB:
        maintenance_work_mem = 8 * KB_PER_GB

    # wal_buffers: 3 % of shared_buffers, at most 16MB, rounded up to 16MB above 14MB, at least 32kB
    wal_buffers = math.floor((3 * shared_buffers) / 100)
    if wal_buffers > 16 * KB_PER_MB:
        wal_buffers = 16 * KB_PER_MB
    if 14 * KB_PER_MB < wal_buffers < 16 * KB_PER_MB:
        wal_buffers = 16 * KB_PER_MB
    if wal_buffers < 32:
        wal_buffers = 32

    default_statistics_target = 500 if workload == "dw" else 100

    # random_page_cost: 1.1 when the data is cached or on fast storage; 4 on HDD and for a dw
    # that does not fit in RAM (PGTune keeps the PostgreSQL default there)
    if db_size == "less_ram":
        random_page_cost = 1.1
    elif storage == "hdd" or workload == "dw":
        random_page_cost = 4
    else:
        random_page_cost = 1.1

    effective_io_concurrency = EFFECTIVE_IO_CONCURRENCY[storage]

    # parallel settings, only with a known CPU count of 4 or more
    parallel: list = []
    if cpu_count is not None and cpu_count >= 4:
        workers_per_gather = math.ceil(cpu_count / 2)
        if workload != "dw" and workers_per_gather > 4:
            workers_per_gather = 4
        parallel = [("max_worker_processes", cpu_count), ("max_parallel_workers_per_gather", workers_per_gather)]
        if version >= 10:
            parallel.append(("max_parallel_workers", cpu_count))
        if version >= 11:
            parallel.append(("max_parallel_maintenance_workers", min(math.ceil(cpu_count / 2), 4)))

    # work_mem: (RAM - shared_buffers) / ((max_connections + max_worker_processes) * 3),
    # halved for dw and mixed, a sixth for desktop, adjusted for db_size, at least 4MB
    workers_for_work_mem = parallel[0][1] if parallel else DEFAULT_MAX_WORKER_PROCESSES
    work_mem_value = (total_kb - shared_buffers) / ((connections + workers_for_work_mem) * 3)
    if workload in ("dw", "mixed"):
        work_mem = math.floor(work_mem_value / 2)
    elif workload == "desktop":
        work_mem = math.floor(work_mem_value / 6)
    else:
        work_mem = math.floor(work_mem_value)
    if db_size == "less_ram":
        work_mem = math.floor(work_mem * 1.3)
    elif db_size == "greater_ram":
        work_mem = math.floor(work_mem * 0.9)
    if work_mem < 4 * KB_PER_MB:
        work_mem = 4 * KB_PER_MB

    jit = "off" if version >= 12 and workload in ("web", "oltp", "mixed") else None
    wal_compression = "lz4" if version >= 15 else "on"

    autovacuum_max_workers = None
    if cpu_count is not None and cpu_count >= 32:
        autovacuum_max_workers = 5
    elif cpu_count is not None and cpu_count >= 16:
        autovacuum_max_workers = 4

    # PostgreSQL refuses to start when all backends together exceed MAX_BACKENDS; PGTune does not check
    other_backends = (
        (autovacuum_max_workers or PG_DEFAULT_AUTOVACUUM_MAX_WORKERS)
        + 1
        + workers_for_work_mem
        + (0 if workload == "desktop" else PG_DEFAULT_MAX_WAL_SENDERS)
    )
    if connections > MAX_BACKENDS - other_backends:
        raise _fail(
            "max_connections",
            f"a whole number from {MIN_CONNECTIONS} to {MAX_BACKENDS - other_backends} (PostgreSQL's "
            f"{MAX_BACKENDS} backends less {other_backends} autovacuum, worker and WAL sender slots)",
            max_connections,
        )

    # autovacuum_work_mem: cap each autovacuum worker at 2GB once maintenance_work_mem reaches it
    autovacuum_work_mem = 2 * KB_PER_GB if maintenance_work_mem >= 2 * KB_PER_GB else None

    io_method = "io_uring" if version >= 18 else None
    io_workers = None
    if version >= 18 and cpu_count is not None:
        io_workers = min(32, max(3, math.floor(cpu_count / 4)))
        if io_workers <= 3:
            io_workers = None

    settings = [
        ("max_connections", connections),
        ("shared_buffers", _format_kb(shared_buffers)),
        ("effective_cache_size", _format_kb(effective_cache_size)),
        ("maintenance_work_mem", _format_kb(maintenance_work_mem)),
        ("checkpoint_completion_target", 0.9),
        ("wal_buffers", _format_kb(wal_buffers)),
        ("default_statistics_target", default_statistics_target),
        ("random_page_cost", _number(random_page_cost)),
        ("effective_io_concurrency", effective_io_concurrency),
        ("work_mem", _format_kb(work_mem)),
        ("huge_pages", huge_pages),
        ("jit", jit),
        ("wal_compression", wal_compression),
        ("autovacuum_max_workers", autovacuum_max_workers),
        ("autovacuum_work_mem", None if autovacuum_work_mem is None else _format_kb(autovacuum_work_mem)),
        ("io_method", io_method),
        ("io_workers", io_workers),
        ("min_wal_size", _format_kb(MIN_WAL_SIZE_MB[workload] * KB_PER_MB)),
        ("max_wal_size", _format_kb(MAX_WAL_SIZE_MB[workload] * KB_PER_MB)),
    ] + parallel
    if workload == "desktop":
        settings += [("wal_level", "minimal"), ("max_wal_senders", 0)]
    # PGTune prints only what is set: an absent value keeps the PostgreSQL default
    return {name: value for name, value in settings if value is not None}


class FilterModule:
    """onprem.datastores.pg_tune"""

    def filters(self) -> dict:
        return {"pg_tune": pg_tune}
