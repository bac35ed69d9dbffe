# -*- coding: utf-8 -*-
"""Count the module runs of one ansible-playbook run, for scripts/bench.sh (not part of the collection).

Enabled beside the stdout callback, it prints nothing; at the end of the run it writes one line of
JSON to the file named by ONPREM_MODULE_RUNS_FILE. Without that variable it disables itself.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: module_runs
type: aggregate
short_description: Count module runs on the hosts and on the controller, for scripts/bench.sh
description:
  - Counts the results of one run (ok, changed and failed; loop items counted one by one, the
    result of the looped task itself not counted; skipped and unreachable results are not module
    runs), split into those that ran on a managed host and those that ran on the controller.
  - On the controller are the actions that ship no module to a host (set_fact, assert, debug,
    fail, include_*, meta, add_host, group_by, include_vars, set_stats, pause,
    validate_argument_spec, ...), runs delegated to the controller (delegate_to localhost,
    127.0.0.1 or ::1, or a delegated host whose ansible_connection is local), runs on the
    implicit localhost, and runs whose connection keyword is local where it takes effect (the
    host's inventory does not set ansible_connection, which would win over the keyword) on a
    host that is not otherwise reached with the local connection.
  - A host of the inventory is a managed host whatever connection reaches it, so a play against
    C(-i localhost, -c local) counts its module runs on the host.
  - Retries of C(until) and polls of C(async) tasks re-run a module without a result of their
    own; they are counted apart.
  - Writes nothing and changes no output unless ONPREM_MODULE_RUNS_FILE is set.
requirements:
  - its directory in ANSIBLE_CALLBACK_PLUGINS and module_runs in ANSIBLE_CALLBACKS_ENABLED
  - ONPREM_MODULE_RUNS_FILE, the file the one-line JSON summary is written to
"""

import json
import os
import tempfile

from ansible import context
from ansible.inventory.helpers import get_group_vars
from ansible.plugins.callback import CallbackBase
from ansible.utils.vars import combine_vars

ENV = "ONPREM_MODULE_RUNS_FILE"

# Actions run by their action plugin in the controller's worker: no module goes to a host.
CONTROLLER_ACTIONS = frozenset((
    "add_host", "assert", "debug", "fail", "group_by", "import_playbook", "import_role",
    "import_tasks", "include", "include_role", "include_tasks", "include_vars", "meta", "pause",
    "set_fact", "set_stats", "validate_argument_spec",
))
LOCALHOST = frozenset(("localhost", "127.0.0.1", "::1"))
LOCAL_CONNECTIONS = frozenset(("local", "ansible.builtin.local", "ansible.legacy.local"))
COUNTS = ("results", "host", "controller", "ok", "changed", "failed", "skipped", "unreachable",
          "retries", "async_polls", "tasks")


def short_action(action):
    """ansible.builtin.set_fact and ansible.legacy.set_fact are set_fact."""
    for prefix in ("ansible.builtin.", "ansible.legacy."):
        if action.startswith(prefix):
            return action[len(prefix):]
    return action


def is_local(connection):
    return isinstance(connection, str) and connection in LOCAL_CONNECTIONS


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "module_runs"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get(ENV) or None
        self.disabled = self._path is None  # the task queue manager then calls nothing of it
        self._counts = dict.fromkeys(COUNTS, 0)
        self._by_host = {}
        self._by_task = {}
        self._inventory_connection = {}

    # --- where a result ran ----------------------------------------------------------------------
    def _host_connection(self, host):
        """ansible_connection as the inventory sets it for the host (host, then its groups), or None."""
        if host.name not in self._inventory_connection:
            inventory_vars = combine_vars(get_group_vars(host.get_groups()), host.get_vars())
            self._inventory_connection[host.name] = inventory_vars.get("ansible_connection")
        return self._inventory_connection[host.name]

    def _on_controller(self, result, item):
        fields = result.task_fields or {}
        action = fields.get("action") or result.task.action or ""
        if short_action(action) in CONTROLLER_ACTIONS:
            return True
        # The worker templated delegate_to (per item in a loop) before it dumped the task's fields.
        delegate = fields.get("delegate_to")
        if delegate:
            if delegate in LOCALHOST:
                return True
            # The callback's copy keeps ansible_connection of _ansible_delegated_vars (not the host name).
            delegated = result.result.get("_ansible_delegated_vars") or {}
            return is_local(delegated.get("ansible_connection"))
        if getattr(result.host, "implicit", False):  # the implicit localhost is the controller
            return True
        connection = fields.get("connection")  # the loaded plugin for loop items, else the keyword (or -c)
        if not is_local(connection):
            return False
        inventory = self._host_connection(result.host)
        if is_local(inventory or context.CLIARGS.get("connection")):
            return False  # the host is always reached locally: a managed host (e.g. -i localhost, -c local)
        # Outside a loop the field is the keyword, which an inventory ansible_connection overrides.
        return item or inventory is None

    # --- counting --------------------------------------------------------------------------------
    def _count(self, result, status, item=False):
        counts = self._counts
        counts[status] += 1
        counts["results"] += 1
        if self._on_controller(result, item):
            counts["controller"] += 1
        else:
            counts["host"] += 1
            self._by_host[result.host.name] = self._by_host.get(result.host.name, 0) + 1
            name = result.task.get_name()
            self._by_task[name] = self._by_task.get(name, 0) + 1

    @staticmethod
    def _looped(result):
        """The result of a looped task itself: its items have been counted one by one."""
        task = result.task
        return task.loop is not None or bool(task.loop_with)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._counts["tasks"] += 1

    def v2_playbook_on_handler_task_start(self, task):
        self._counts["tasks"] += 1

    def v2_runner_on_ok(self, result):
        if not self._looped(result):
            self._count(result, "changed" if result.is_changed() else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not self._looped(result):
            self._count(result, "failed")

    def v2_runner_on_skipped(self, result):
        # A looped task is skipped when all its items were (counted as items) or it had none.
        if not self._looped(result) or not result.result.get("results"):
            self._counts["skipped"] += 1

    def v2_runner_on_unreachable(self, result):
        if not self._looped(result):
            self._counts["unreachable"] += 1

    def v2_runner_item_on_ok(self, result):
        self._count(result, "changed" if result.is_changed() else "ok", item=True)

    def v2_runner_item_on_failed(self, result):
        if result.is_unreachable():  # sent as an item failure; the connection failed, no module ran
            self._counts["unreachable"] += 1
        else:
            self._count(result, "failed", item=True)

    def v2_runner_item_on_skipped(self, result):
        self._counts["skipped"] += 1

    def v2_runner_retry(self, result):
        self._counts["retries"] += 1

    def v2_runner_on_async_poll(self, result):
        self._counts["async_polls"] += 1

    def v2_playbook_on_stats(self, stats):
        summary = dict(self._counts, by_host=dict(sorted(self._by_host.items())),
                       by_task=dict(sorted(self._by_task.items())))
        directory = os.path.dirname(os.path.abspath(self._path))
        fd, tmp = tempfile.mkstemp(prefix=".module_runs.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(summary, sort_keys=True) + "\n")
            os.replace(tmp, self._path)
        except BaseException:
            os.unlink(tmp)
            raise
