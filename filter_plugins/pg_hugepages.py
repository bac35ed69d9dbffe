# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_hugepages: vm.nr_hugepages for PostgreSQL 15's main shared memory segment.

PostgreSQL 15 can say exactly how many huge pages it wants
(``postgres -D DATADIR -C shared_memory_size_in_huge_pages``), but only on the
database host, after initdb, with the final configuration.  The role must set
vm.nr_hugepages before that (a reboot-free reservation works best early), so
this filter estimates the same number on the controller from the settings that
size the segment.

The estimate is a linear upper bound fitted to measurements of PostgreSQL 15.18
(Debian 15.18-0+deb12u1, x86_64): 300 random configurations of shared_buffers
16MB-128GB, max_connections 20-10000, workers, wal senders, prepared
transactions, max_locks_per_transaction and wal_buffers.  With extra_mb=0 it
never came out below the server's own figure, and was at most 4.1 % above it
for shared_buffers of 1GB or more, at most 2.2 % from 4GB (see docs/tuning.md
and the recorded rows in tests/unit/test_pg_hugepages.py).

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: pg_hugepages
short_description: vm.nr_hugepages for PostgreSQL's shared memory
version_added: 0.1.0
author: onprem.datastores maintainers
description:
  - Returns the number of huge pages that PostgreSQL 15's main shared memory segment needs - the
    value for the C(vm.nr_hugepages) sysctl on a host that runs one PostgreSQL cluster.
  - The segment is shared_buffers plus PostgreSQL's other shared memory (buffer descriptors and
    mapping table, WAL buffers, per-backend slots, the lock tables). In kB, the estimate is
    shared_buffers * 1.03 + wal_buffers + slots * (26 + 0.42 * max_locks_per_transaction) + 4096 +
    extra_mb * 1024, divided by O(page_kb) and rounded up, where slots is max_connections +
    autovacuum_max_workers + 1 + max_worker_processes + max_wal_senders + max_prepared_transactions.
  - Fitted as an upper bound to PostgreSQL 15.18's own C(shared_memory_size_in_huge_pages) over
    300 configurations - never below it, at most 4.1 % above it from 1GB of shared_buffers up and
    at most 2.2 % from 4GB (before O(extra_mb)).
  - The exact figure, once PostgreSQL is installed and configured, is
    C(postgres -D DATADIR -C shared_memory_size_in_huge_pages) (PostgreSQL 15 and later, server
    stopped). Use it to check the estimate.
positional: _input
options:
  _input:
    description:
      - shared_buffers with a unit, as PostgreSQL writes it (C(4GB), C(512MB), C(1310kB); units
        kB, MB, GB, TB), or a whole number of MB (int or text). Unlike in C(postgresql.conf), a
        number without a unit means MB, not 8kB blocks.
    type: raw
    required: true
  max_connections:
    description: PostgreSQL's max_connections.
    type: int
    default: 100
  wal_buffers:
    description:
      - wal_buffers in the same forms as shared_buffers. C(null) or C(-1) means PostgreSQL's
        automatic size (shared_buffers / 32, from 64kB to 16MB).
    type: raw
  max_worker_processes:
    description: PostgreSQL's max_worker_processes.
    type: int
    default: 8
  autovacuum_max_workers:
    description: PostgreSQL's autovacuum_max_workers.
    type: int
    default: 3
  max_wal_senders:
    description: PostgreSQL's max_wal_senders.
    type: int
    default: 10
  max_prepared_transactions:
    description: PostgreSQL's max_prepared_transactions.
    type: int
    default: 0
  max_locks_per_transaction:
    description: PostgreSQL's max_locks_per_transaction.
    type: int
    default: 64
  extra_mb:
    description:
      - Shared memory of preloaded libraries, in MB. pg_stat_statements with its default
        5000 entries needs about 2 MB; the default 8 leaves room for it and a few more.
    type: int
    default: 8
  page_kb:
    description: Huge page size in kB (C(Hugepagesize) in /proc/meminfo); 2048 on x86_64.
    type: int
    default: 2048
notes:
  - Pass the values the server will really run with; the output of
    P(onprem.datastores.pg_tune#filter) carries shared_buffers, wal_buffers, max_connections and
    max_worker_processes.
  - With C(huge_pages=try) PostgreSQL falls back to normal pages when too few huge pages are free,
    so an estimate that is too low costs performance, never a failed start.
"""

EXAMPLES = r"""
- name: Reserve huge pages for the tuned shared_buffers
  vars:
    __postgresql_tuning: "{{ 16384 | onprem.datastores.pg_tune(4) }}"
  ansible.posix.sysctl:
    name: vm.nr_hugepages
    value: "{{ __postgresql_tuning.shared_buffers | onprem.datastores.pg_hugepages(
                 max_connections=__postgresql_tuning.max_connections,
                 wal_buffers=__postgresql_tuning.wal_buffers,
                 max_worker_processes=__postgresql_tuning.max_worker_processes | default(8)) }}"
    sysctl_file: /etc/sysctl.d/60-postgresql-hugepages.conf
  # 4GB shared_buffers, 200 connections, 16MB WAL buffers, 4 workers -> 2130 pages
"""

RETURN = r"""
_value:
  description: Number of huge pages of O(page_kb) kB.
  type: int
"""

FILTER = "pg_hugepages"

UNITS_KB = {"kb": 1, "mb": 1024, "gb": 1024 * 1024, "tb": 1024 * 1024 * 1024}
SIZE_RE = re.compile(r"^\s*(\d+)\s*(kB|MB|GB|TB)?\s*$", re.IGNORECASE)

# Fitted upper bound (kB); see the module docstring and docs/tuning.md
BUFFER_FACTOR = 1.03  # shared_buffers + buffer descriptors, mapping table, checkpoint sort array
SLOT_KB = 26  # PGPROC and the other per-backend arrays
LOCK_SLOT_KB = 0.42  # lock and predicate-lock tables, per slot and per max_locks_per_transaction
FIXED_KB = 4096  # everything else (CLOG, subtrans, ... buffers)


def _fail(argument: str, allowed: str, value: Any) -> AnsibleFilterError:
    return AnsibleFilterError(f"{FILTER}: {argument} must be {allowed}; got {value!r}")


def _count(value: Any, argument: str, minimum: int) -> int:
    allowed = f"a whole number >= {minimum}"
    if isinstance(value, bool):
        raise _fail(argument, allowed, value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < minimum:
        raise _fail(argument, allowed, value)
    return int(value)


def _size_kb(value: Any, argument: str) -> int:
    """'4GB', '512MB', '1310kB' (PostgreSQL units) or a whole number of MB (int or text)."""
    allowed = "a size such as '4GB', '512MB', '1310kB' or a whole number of MB, greater than 0"
    if isinstance(value, bool):
        raise _fail(argument, allowed, value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if value <= 0:
            raise _fail(argument, allowed, value)
        return value * 1024
    if isinstance(value, str):
        match = SIZE_RE.match(value)
        if match:
            unit = (match.group(2) or "MB").lower()
            size = int(match.group(1)) * UNITS_KB[unit]
            if size > 0:
                return size
    raise _fail(argument, allowed, value)


def pg_hugepages(
    shared_buffers: Any,
    max_connections: Any = 100,
    wal_buffers: Any = None,
    max_worker_processes: Any = 8,
    autovacuum_max_workers: Any = 3,
    max_wal_senders: Any = 10,
    max_prepared_transactions: Any = 0,
    max_locks_per_transaction: Any = 64,
    extra_mb: Any = 8,
    page_kb: Any = 2048,
) -> int:
    """Return vm.nr_hugepages for one PostgreSQL 15 cluster."""
    buffers_kb = _size_kb(shared_buffers, "shared_buffers")
    connections = _count(max_connections, "max_connections", 1)
    workers = _count(max_worker_processes, "max_worker_processes", 0)
    autovacuum = _count(autovacuum_max_workers, "autovacuum_max_workers", 1)
    senders = _count(max_wal_senders, "max_wal_senders", 0)
    prepared = _count(max_prepared_transactions, "max_prepared_transactions", 0)
    locks = _count(max_locks_per_transaction, "max_locks_per_transaction", 10)
    extra = _count(extra_mb, "extra_mb", 0)
    page = _count(page_kb, "page_kb (2048 or 1048576)", 4)

    wal_kb: Optional[int]
    if wal_buffers is None or (not isinstance(wal_buffers, bool) and wal_buffers in (-1, "-1")):
        # PostgreSQL's automatic wal_buffers: shared_buffers / 32 in 8kB pages, 64kB to 16MB
        wal_kb = min(max((buffers_kb // 8 // 32) * 8, 64), 16 * 1024)
    else:
        wal_kb = _size_kb(wal_buffers, "wal_buffers")

    slots = connections + autovacuum + 1 + workers + senders + prepared
    size_kb = (
        math.ceil(buffers_kb * BUFFER_FACTOR)
        + wal_kb
        + math.ceil(slots * (SLOT_KB + LOCK_SLOT_KB * locks))
        + FIXED_KB
        + extra * 1024
    )
    return math.ceil(size_kb / page)


class FilterModule:
    """onprem.datastores.pg_hugepages"""

    def filters(self) -> dict:
        return {"pg_hugepages": pg_hugepages}
