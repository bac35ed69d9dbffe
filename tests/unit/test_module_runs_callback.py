# -*- coding: utf-8 -*-
"""scripts/ansible/callback_plugins/module_runs.py: real ansible-playbook runs, counts worked out by hand."""

import json
import os
import shutil
import subprocess
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "scripts", "ansible", "callback_plugins")
# ansible-core is in requirements.txt, which the unit stage's virtualenv installs: without
# ansible-playbook these tests fail (they used to be skipped, which hid them).
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
if not os.path.exists(ANSIBLE_PLAYBOOK):
    ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook") or "ansible-playbook"

# The issue's play: a looped command of 3 items, a skipped task, a set_fact, an assert, a delegated task.
PLAY = """
- name: Counted by module_runs
  hosts: all
  gather_facts: false
  tasks:
    - name: Looped command
      ansible.builtin.command: "echo {{ item }}"
      loop: [a, b, c]
      changed_when: item == 'b'
    - name: Skipped
      ansible.builtin.command: "true"
      when: false
    - name: Set a fact
      ansible.builtin.set_fact:
        counted: true
    - name: Assert
      ansible.builtin.assert:
        that: counted
    - name: Delegated to the controller
      ansible.builtin.command: "true"
      delegate_to: localhost
      changed_when: false
"""

# Loops with skipped and failed items, a templated delegate_to, an include, an until retry.
EDGE_PLAY = """
- name: Edge cases of module_runs
  hosts: all
  gather_facts: false
  tasks:
    - name: Items, one skipped
      ansible.builtin.command: "echo {{ item }}"
      loop: [1, 2, 3, 4]
      when: item != 2
      changed_when: false
    - name: Items, one failed
      ansible.builtin.command: "{{ item }}"
      loop: ["true", "false"]
      changed_when: false
      ignore_errors: true
    - name: Delegated through a template
      ansible.builtin.command: "true"
      delegate_to: "{{ item }}"
      loop: [localhost]
      changed_when: false
    - name: Empty loop
      ansible.builtin.command: "true"
      loop: []
    - name: All items skipped
      ansible.builtin.command: "true"
      loop: [1, 2]
      when: false
    - name: Include
      ansible.builtin.include_tasks: included.yml
    - name: Retried once
      ansible.builtin.command: "false"
      register: attempt
      until: attempt.rc == 0
      retries: 1
      delay: 0
      changed_when: false
      ignore_errors: true
"""
INCLUDED = """
- name: Included debug
  ansible.builtin.debug:
    msg: included
- name: Included and skipped
  ansible.builtin.debug:
    msg: never
  when: false
"""


def run(tmp_path, play, enable=True, output=None):
    """ansible-playbook -i localhost, -c local on PLAY; returns its stdout."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(play, encoding="utf-8")
    (tmp_path / "included.yml").write_text(INCLUDED, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "ONPREM_MODULE_RUNS_FILE"}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    if enable:
        env.update(ANSIBLE_CALLBACK_PLUGINS=PLUGINS, ANSIBLE_CALLBACKS_ENABLED="module_runs")
    if output:
        env["ONPREM_MODULE_RUNS_FILE"] = str(output)
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter={{ ansible_playbook_python }}",
         str(playbook)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def counts(tmp_path, play):
    output = tmp_path / "runs.json"
    run(tmp_path, play, output=output)
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_the_issues_play(tmp_path):
    # Looped command: 3 items on the host (b changed), the looped task's own result not counted.
    # Skipped: no module run. set_fact, assert: controller. Delegated to localhost: controller.
    assert counts(tmp_path, PLAY) == {
        "results": 6, "host": 3, "controller": 3,
        "ok": 5, "changed": 1, "failed": 0, "skipped": 1, "unreachable": 0,
        "retries": 0, "async_polls": 0, "tasks": 5, "by_host": {"localhost": 3},
        "by_task": {"Looped command": 3},
    }


def test_edge_cases(tmp_path):
    # host: items 1, 3, 4 (2 skipped) + items true, false (false failed, ignored) + the retried
    #   task's last attempt (failed; its first attempt is a retry) = 6
    # controller: the item delegated to {{ item }} = localhost, the include_tasks, the included
    #   debug = 3
    # skipped: item 2, the empty loop, the 2 items of "All items skipped" (not their task), the
    #   included task with when: false = 5
    assert counts(tmp_path, EDGE_PLAY) == {
        "results": 9, "host": 6, "controller": 3,
        "ok": 7, "changed": 0, "failed": 2, "skipped": 5, "unreachable": 0,
        "retries": 1, "async_polls": 0, "tasks": 9, "by_host": {"localhost": 6},
        # by task: the items of the two loops on the host, and the retried task's last attempt
        "by_task": {"Items, one skipped": 3, "Items, one failed": 2, "Retried once": 1},
    }


def test_output_unchanged_and_nothing_written_without_the_variable(tmp_path):
    plain = run(tmp_path, PLAY, enable=False)
    before = set(os.listdir(tmp_path))
    assert run(tmp_path, PLAY) == plain  # enabled, variable unset: disabled
    assert set(os.listdir(tmp_path)) == before
    assert run(tmp_path, PLAY, output=tmp_path / "runs.json") == plain
    assert (tmp_path / "runs.json").exists()
