# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""paths_differ: which of the files and directories a role writes differ from what one find saw.

A converged host answers "is everything in place?" in one module run (ansible.builtin.find with
get_checksum) instead of two per template and one per directory; the tasks that write a path then
run only for the paths this filter returns.

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: paths_differ
short_description: The wanted files and directories that are missing or differ from what a find saw
version_added: 0.2.0
author: onprem.datastores maintainers
description:
  - Compares what one C(ansible.builtin.find) (C(file_type=any), C(get_checksum=true)) reported with
    the files and directories a role is about to write, and returns the paths that differ, in the
    order of O(wanted). A role skips the write tasks of every other path.
  - A file differs when it is missing, is not a regular file, or its owner, group, mode or checksum
    differs. A directory differs when it is missing, is not a directory, or its owner, group or mode
    differs. Owner and group match by name or by number.
  - The checksum is compared as given, so it must be of the algorithm the find used (sha1 by
    default); compute it from what the write task writes, e.g.
    C(lookup('ansible.builtin.template', src) | hash('sha1')).
positional: _input
options:
  _input:
    description: The registered result of the find, or its C(files) list.
    type: raw
    required: true
  wanted:
    description:
      - The paths as the role writes them. Each item has C(path), C(owner), C(group), C(mode) (a
        string of four octal digits, e.g. C("0640") or C("2750")), and either C(checksum) (a file)
        or C(state=directory).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Read the files of the role
  ansible.builtin.find:
    paths: [/etc/example]
    patterns: [example.conf]
    file_type: any
    get_checksum: true
  register: found

- name: Write the configuration
  ansible.builtin.template:
    src: example.conf.j2
    dest: /etc/example/example.conf
    owner: root
    group: root
    mode: "0644"
  when: "'/etc/example/example.conf' in found | onprem.datastores.paths_differ(wanted)"
  vars:
    wanted:
      - {path: /etc/example, owner: root, group: root, mode: "0755", state: directory}
      - path: /etc/example/example.conf
        owner: root
        group: root
        mode: "0644"
        checksum: "{{ lookup('ansible.builtin.template', 'example.conf.j2') | hash('sha1') }}"
"""

RETURN = r"""
_value:
  description: The paths of O(wanted) that are missing or differ, in the order given.
  type: list
  elements: str
"""

_FIELDS = ("path", "owner", "group", "mode")


def _normalise(path: str) -> str:
    return path.rstrip("/") or "/"


def _mode(value: Any, where: str) -> str:
    text = str(value)
    if len(text) < 4:
        text = text.zfill(4)
    if len(text) != 4 or any(c not in "01234567" for c in text):
        raise AnsibleFilterError("paths_differ: %s: mode must be four octal digits such as '0640', got %r"
                                 % (where, value))
    return text


def _same_id(want: Any, name: Any, number: Any) -> bool:
    want = str(want)
    return want == str(name) or (number is not None and want == str(number))


def paths_differ(found: Any, wanted: list[dict[str, Any]]) -> list[str]:
    """The paths of `wanted` that are missing from the find's results or differ from them."""
    if isinstance(found, dict):
        files = found.get("files") or []
    elif isinstance(found, list):
        files = found
    else:
        raise AnsibleFilterError("paths_differ: the input must be a find result or its files list, got %s"
                                 % type(found).__name__)
    if not isinstance(wanted, list):
        raise AnsibleFilterError("paths_differ: wanted must be a list of dicts, got %s" % type(wanted).__name__)
    seen = {}
    for entry in files:
        if isinstance(entry, dict) and "path" in entry:
            seen[_normalise(str(entry["path"]))] = entry
    differ = []
    for index, want in enumerate(wanted):
        where = "wanted[%d]" % index
        if not isinstance(want, dict):
            raise AnsibleFilterError("paths_differ: %s must be a dict, got %s" % (where, type(want).__name__))
        missing = [field for field in _FIELDS if field not in want]
        if missing:
            raise AnsibleFilterError("paths_differ: %s lacks %s" % (where, ", ".join(missing)))
        is_dir = want.get("state") == "directory"
        if is_dir == ("checksum" in want):
            raise AnsibleFilterError("paths_differ: %s (%s) needs either checksum (a file) or state=directory"
                                     % (where, want["path"]))
        mode = _mode(want["mode"], where)
        path = _normalise(str(want["path"]))
        have = seen.get(path)
        same = (
            have is not None
            and bool(have.get("isdir" if is_dir else "isreg"))
            and str(have.get("mode", "")) == mode
            and _same_id(want["owner"], have.get("pw_name"), have.get("uid"))
            and _same_id(want["group"], have.get("gr_name"), have.get("gid"))
            and (is_dir or str(have.get("checksum", "")) == str(want["checksum"]))
        )
        if not same:
            differ.append(str(want["path"]))
    return differ


class FilterModule:
    def filters(self):
        return {"paths_differ": paths_differ}
