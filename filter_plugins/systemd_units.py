# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd_units: the state of several units from one `systemctl show`.

One read-only `systemctl show --property=Id,LoadState,ActiveState,SubState,UnitFileState U1 U2 ...`
per host tells which units are already as a role wants them; the role's systemd_service tasks then
run only for the others, instead of once per unit on every run.

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: systemd_units
short_description: Parse one systemctl show of several units, and say which are as wanted
version_added: 0.2.0
author: onprem.datastores maintainers
description:
  - Parses the output of C(systemctl show --property=... UNIT...), one block of C(Key=Value) lines per
    unit in the order asked, blocks separated by an empty line, into a dict from unit name to its
    properties. A unit systemd does not know is reported too (C(LoadState=not-found)).
  - With O(wanted), returns instead the names of the units already in the wanted state, as
    C(ansible.builtin.systemd_service) would leave them unchanged. C(running) is active (or
    activating) and enabled (or static, or enabled through an alias); C(started) is active or
    activating whatever the enablement; C(stopped) is inactive (or failed) and not enabled;
    C(masked) is masked and not running; C(absent) is a unit systemd does not know (C(not-found)).
positional: _input
options:
  _input:
    description: The command's stdout (a string) or stdout_lines (a list).
    type: raw
    required: true
  units:
    description: The units in the order they were passed to systemctl show.
    type: list
    elements: str
    required: true
  wanted:
    description: Unit name to one of C(running), C(started), C(stopped), C(masked), C(absent).
    type: dict
"""

EXAMPLES = r"""
- name: Read the state of the units
  ansible.builtin.command:
    argv: "{{ ['systemctl', 'show', '--property=Id,LoadState,ActiveState,SubState,UnitFileState'] + units }}"
  register: shown
  changed_when: false
  check_mode: false

- name: Start the units that are not running yet
  ansible.builtin.systemd_service:
    name: "{{ item }}"
    state: started
    enabled: true
  loop: "{{ units | reject('in', shown.stdout | onprem.datastores.systemd_units(units, wanted)) | list }}"
  vars:
    wanted: "{{ dict(units | zip(units | map('regex_replace', '.*', 'running'))) }}"
"""

RETURN = r"""
_value:
  description:
    - Without O(wanted), a dict from each unit to its properties (strings); with O(wanted), the list
      of the units of O(wanted) that are already in the wanted state, in the order of O(units).
  type: raw
"""

_ACTIVE = ("active", "activating", "reloading")
_ENABLED = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")
_STATES = ("running", "started", "stopped", "masked", "absent")


def _parse(output: Any, units: list[str]) -> dict[str, dict[str, str]]:
    if isinstance(output, str):
        lines = output.splitlines()
    elif isinstance(output, list):
        lines = [str(line) for line in output]
    else:
        raise AnsibleFilterError("systemd_units: the input must be systemctl show's stdout or stdout_lines, got %s"
                                 % type(output).__name__)
    blocks: list[dict[str, str]] = [{}]
    for line in lines:
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            blocks[-1][key] = value
    blocks = [block for block in blocks if block]
    if len(blocks) != len(units):
        raise AnsibleFilterError("systemd_units: systemctl show printed %d blocks for %d units (%s)"
                                 % (len(blocks), len(units), ", ".join(units)))
    return dict(zip(units, blocks))


def _as_wanted(props: dict[str, str], state: str) -> bool:
    active = props.get("ActiveState", "")
    enabled = props.get("UnitFileState", "")
    if props.get("LoadState") == "not-found":
        return state in ("absent", "stopped") and active not in _ACTIVE
    if state == "running":
        return active in _ACTIVE and enabled in _ENABLED
    if state == "started":
        return active in _ACTIVE
    if state == "stopped":
        return active not in _ACTIVE and enabled not in ("enabled", "enabled-runtime")
    if state == "masked":
        return props.get("LoadState") == "masked" and active not in _ACTIVE
    return False  # absent, but systemd knows the unit


def systemd_units(output: Any, units: list[str], wanted: dict[str, str] | None = None) -> Any:
    """The properties of each unit, or (with `wanted`) the units already in their wanted state."""
    if not isinstance(units, list) or not all(isinstance(unit, str) for unit in units):
        raise AnsibleFilterError("systemd_units: units must be a list of unit names")
    parsed = _parse(output, units)
    if wanted is None:
        return parsed
    if not isinstance(wanted, dict):
        raise AnsibleFilterError("systemd_units: wanted must be a dict of unit -> state")
    ok = []
    for unit in units:
        if unit not in wanted:
            continue
        state = wanted[unit]
        if state not in _STATES:
            raise AnsibleFilterError("systemd_units: wanted[%s] is %r; allowed: %s" % (unit, state, ", ".join(_STATES)))
        if _as_wanted(parsed[unit], state):
            ok.append(unit)
    missing = sorted(set(wanted) - set(units))
    if missing:
        raise AnsibleFilterError("systemd_units: wanted names units that were not shown: %s" % ", ".join(missing))
    return ok


class FilterModule:
    def filters(self):
        return {"systemd_units": systemd_units}
