# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_replication: the streaming-replication settings of a PostgreSQL cluster, from its topology.

One primary, any number of physical streaming replicas, each synchronous or asynchronous and
in a zone.  The filter says who streams from whom, under which application_name and slot, and
which postgresql.conf settings every node gets, so that the role that applies them today and
a failover manager (Patroni) later compute the same thing.

Every setting that needs a restart is the same on every node and does not depend on how many
replicas there are: adding a replica or promoting one never restarts a server.  Only
``synchronous_standby_names`` differs between the primary and the replicas, and it is reloadable.

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Optional

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: pg_replication
short_description: Streaming-replication settings of a PostgreSQL cluster from its topology
version_added: 0.2.0
author: onprem.datastores maintainers
description:
  - Takes the members of one PostgreSQL cluster (name, role, replication mode, zone) and returns
    the primary, each replica's C(application_name) and physical slot name, and the
    C(postgresql.conf) settings of the primary and of the replicas.
  - C(settings) is identical on every node and holds everything that needs a restart
    (C(wal_level=replica), C(max_wal_senders), C(max_replication_slots), C(hot_standby),
    C(wal_log_hints)) plus C(hot_standby_feedback), C(max_slot_wal_keep_size) and
    C(synchronous_commit). It does not depend on the number of replicas, so adding one (or
    promoting one) needs no restart.
  - C(primary_settings) and C(replica_settings) hold C(synchronous_standby_names) (reloadable) -
    C(ANY n ("a", "b")) over the replicas marked C(sync) on the primary, empty on the replicas (a
    promoted replica must not wait for standbys that are not there yet).
  - Application and slot names are the member names lower-cased with every character outside
    C([a-z0-9_]) replaced by C(_) (slot names allow nothing else), at most 63 characters.
positional: _input
options:
  _input:
    description:
      - The members, a list of mappings with C(name) (required), C(role) (C(primary) or C(replica),
        default C(primary)), C(mode) (C(sync) or C(async), default C(async); ignored for the
        primary) and C(zone) (optional). A list of names is read as members without role.
    type: list
    elements: raw
    required: true
  primary:
    description:
      - Name of the primary. Overrides the members' C(role) (after a promotion only this changes).
        Empty - the one member whose role is C(primary).
    type: str
    default: ""
  max_wal_senders:
    description:
      - max_wal_senders. At least the number of replicas + 2 (a base backup with C(-X stream) uses
        two connections while the other replicas stream).
    type: int
    default: 10
  max_replication_slots:
    description: max_replication_slots; at least the number of replicas (one slot each).
    type: int
    default: 10
  max_slot_wal_keep_size:
    description:
      - WAL a slot may hold on the primary before PostgreSQL invalidates it (a dead replica then
        needs a new clone instead of filling the primary's disk). A size such as C(10GB), a whole
        number of MB, or C(-1) for no limit.
    type: raw
    default: 10GB
  hot_standby_feedback:
    description: hot_standby_feedback - fewer cancelled queries on replicas, more bloat kept on the primary.
    type: bool
    default: true
  wal_log_hints:
    description:
      - wal_log_hints; pg_rewind needs it or data checksums. With checksums it costs nothing
        (hint bits are WAL-logged already).
    type: bool
    default: true
  synchronous_commit:
    description: synchronous_commit - C(on), C(remote_apply), C(remote_write), C(local) or C(off).
    type: str
    default: "on"
  synchronous_standby_count:
    description:
      - How many of the synchronous replicas must confirm a commit (the n of C(ANY n (...))). Capped
        at the number of synchronous replicas, so a promotion that removes one never blocks writes.
    type: int
    default: 1
"""

EXAMPLES = r"""
- name: Compute the replication settings of the cluster
  ansible.builtin.set_fact:
    __replication: >-
      {{ [{'name': 'pg1', 'role': 'primary', 'zone': '1'},
          {'name': 'pg2', 'role': 'replica', 'mode': 'sync', 'zone': '2'},
          {'name': 'pg3', 'role': 'replica', 'mode': 'async', 'zone': '3'}]
         | onprem.datastores.pg_replication(max_slot_wal_keep_size='20GB') }}
  # __replication.primary_settings.synchronous_standby_names == 'ANY 1 ("pg2")'
  # __replication.members[1] == {name: pg2, role: replica, mode: sync, zone: '2',
  #                              application_name: pg2, slot_name: pg2}
"""

RETURN = r"""
_value:
  description: The cluster's replication plan.
  type: dict
  contains:
    primary:
      description: Name of the primary.
      type: str
    members:
      description:
        - Every member in input order - C(name), C(role), C(mode) (C(null) for the primary),
          C(zone), C(application_name), C(slot_name).
      type: list
      elements: dict
    replicas:
      description: Names of the replicas, in input order.
      type: list
      elements: str
    sync_replicas:
      description: Names of the replicas marked C(sync).
      type: list
      elements: str
    synchronous_standby_names:
      description: The primary's synchronous_standby_names (empty without synchronous replicas).
      type: str
    settings:
      description: postgresql.conf settings identical on every node.
      type: dict
    primary_settings:
      description: Settings of the primary only.
      type: dict
    replica_settings:
      description: Settings of the replicas only.
      type: dict
    warnings:
      description: Accepted but doubtful choices (a synchronous replica in the primary's zone).
      type: list
      elements: str
"""

FILTER = "pg_replication"
ROLES = ("primary", "replica")
MODES = ("sync", "async")
SYNCHRONOUS_COMMIT = ("on", "remote_apply", "remote_write", "local", "off")
SIZE_RE = re.compile(r"^(-1|[0-9]+(kB|MB|GB|TB)?)$")
NAMEDATALEN = 63


def _fail(argument: str, allowed: str, value: Any) -> AnsibleFilterError:
    return AnsibleFilterError(f"{FILTER}: {argument} must be {allowed}; got {value!r}")


def _count(value: Any, argument: str, minimum: int) -> int:
    allowed = f"a whole number >= {minimum}"
    if isinstance(value, bool):
        raise _fail(argument, allowed, value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < minimum:
        raise _fail(argument, allowed, value)
    return value


def _bool(value: Any, argument: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "yes", "no"):
        return value.lower() in ("true", "on", "yes")
    raise _fail(argument, "a boolean", value)


def _size(value: Any, argument: str) -> Any:
    allowed = "a size such as '10GB', a whole number of MB, or -1 (no limit)"
    if isinstance(value, bool):
        raise _fail(argument, allowed, value)
    if isinstance(value, int):
        if value < -1:
            raise _fail(argument, allowed, value)
        return value
    if isinstance(value, str) and SIZE_RE.match(value.strip()):
        text = value.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    raise _fail(argument, allowed, value)


def application_name(name: str) -> str:
    """A member name as application_name and slot name: [a-z0-9_], at most 63 characters."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:NAMEDATALEN]


def _member(item: Any, index: int) -> dict:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping):
        raise _fail(f"members[{index}]", "a mapping with name, role, mode, zone", item)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(f"members[{index}].name", "a non-empty string", name)
    role = item.get("role") or "primary"
    if role not in ROLES:
        raise _fail(f"members[{name}].role", " or ".join(ROLES), role)
    mode = item.get("mode") or "async"
    if mode not in MODES:
        raise _fail(f"members[{name}].mode", " or ".join(MODES), mode)
    zone = item.get("zone")
    zone = "" if zone is None else str(zone)
    return {"name": name, "role": role, "mode": mode, "zone": zone}


def pg_replication(
    members: Any,
    primary: Optional[str] = "",
    max_wal_senders: Any = 10,
    max_replication_slots: Any = 10,
    max_slot_wal_keep_size: Any = "10GB",
    hot_standby_feedback: Any = True,
    wal_log_hints: Any = True,
    synchronous_commit: Any = "on",
    synchronous_standby_count: Any = 1,
) -> dict:
    """Return the replication plan of one cluster; see DOCUMENTATION."""
    if isinstance(members, (str, bytes)) or not isinstance(members, (list, tuple)) or not members:
        raise _fail("members", "a non-empty list of members", members)
    parsed = [_member(item, index) for index, item in enumerate(members)]

    names = [m["name"] for m in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _fail("members", "unique names", duplicates)
    sanitised: dict = {}
    for name in names:
        sanitised.setdefault(application_name(name), []).append(name)
    clashes = [group for group in sanitised.values() if len(group) > 1]
    if clashes:
        raise _fail("members", "names that stay distinct as application/slot names ([a-z0-9_], 63 characters)",
                    clashes[0])

    if primary:
        if primary not in names:
            raise _fail("primary", f"one of the members ({', '.join(names)})", primary)
        chosen = primary
    else:
        primaries = [m["name"] for m in parsed if m["role"] == "primary"]
        if len(primaries) != 1:
            raise _fail("members", "exactly one member with role primary (or give primary)", primaries)
        chosen = primaries[0]

    senders = _count(max_wal_senders, "max_wal_senders", 0)
    slots = _count(max_replication_slots, "max_replication_slots", 0)
    keep = _size(max_slot_wal_keep_size, "max_slot_wal_keep_size")
    feedback = _bool(hot_standby_feedback, "hot_standby_feedback")
    hints = _bool(wal_log_hints, "wal_log_hints")
    if synchronous_commit not in SYNCHRONOUS_COMMIT:
        raise _fail("synchronous_commit", ", ".join(SYNCHRONOUS_COMMIT), synchronous_commit)
    wanted = _count(synchronous_standby_count, "synchronous_standby_count", 1)

    plan = []
    for m in parsed:
        is_primary = m["name"] == chosen
        plan.append({
            "name": m["name"],
            "role": "primary" if is_primary else "replica",
            "mode": None if is_primary else m["mode"],
            "zone": m["zone"],
            "application_name": application_name(m["name"]),
            "slot_name": application_name(m["name"]),
        })
    replicas = [m for m in plan if m["role"] == "replica"]
    if slots < len(replicas):
        raise _fail("max_replication_slots", f"at least the number of replicas ({len(replicas)})", slots)
    if senders < len(replicas) + 2:
        raise _fail("max_wal_senders", f"at least the number of replicas + 2 ({len(replicas) + 2})", senders)

    sync = [m for m in replicas if m["mode"] == "sync"]
    if sync:
        quoted = ", ".join(f'"{m["application_name"]}"' for m in sync)
        standby_names = f"ANY {min(wanted, len(sync))} ({quoted})"
    else:
        standby_names = ""

    primary_zone = next(m["zone"] for m in plan if m["role"] == "primary")
    warnings = [
        f"synchronous replica {m['name']} is in the primary's zone {primary_zone!r}: losing that zone loses both"
        for m in sync if primary_zone and m["zone"] == primary_zone
    ]
    if wanted > len(sync) > 0:
        warnings.append(f"synchronous_standby_count {wanted} is more than the {len(sync)} synchronous replicas; "
                        f"using ANY {len(sync)}")

    return {
        "primary": chosen,
        "members": plan,
        "replicas": [m["name"] for m in replicas],
        "sync_replicas": [m["name"] for m in sync],
        "synchronous_standby_names": standby_names,
        "settings": {
            "wal_level": "replica",
            "max_wal_senders": senders,
            "max_replication_slots": slots,
            "max_slot_wal_keep_size": keep,
            "hot_standby": True,
            "hot_standby_feedback": feedback,
            "wal_log_hints": hints,
            "synchronous_commit": synchronous_commit,
        },
        "primary_settings": {"synchronous_standby_names": standby_names},
        "replica_settings": {"synchronous_standby_names": ""},
        "warnings": warnings,
    }


class FilterModule:
    """onprem.datastores.pg_replication"""

    def filters(self) -> dict:
        return {"pg_replication": pg_replication}
