"""Helpers shared by every scenario's testinfra tests.

Loaded by pytest for any test under molecule/ (pytest.ini at the repository
root makes it the rootdir). The `ansible_playbook` fixture re-runs a playbook
against the scenario's own inventory, the way a user would, for the checks
that are about what a run does (bad input refused, reload without restart…).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

# A scenario whose inventory holds Vault-encrypted generated secrets (scenario site) keeps a
# test-only Vault password beside molecule.yml; testinfra and re-run playbooks need it to read
# the inventory, as molecule's own runs do (provisioner env).
_VAULT_PASSWORD = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", "/nonexistent")) / "vault-password-for-tests"
if _VAULT_PASSWORD.is_file():
    os.environ.setdefault("ANSIBLE_VAULT_PASSWORD_FILE", str(_VAULT_PASSWORD))


class PlaybookRun:
    def __init__(self) -> None:
        self.inventory = os.environ["MOLECULE_INVENTORY_FILE"]
        self.scenario_dir = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
        self.project_dir = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", self.scenario_dir.parents[1]))

    def __call__(self, playbook: str, extra_vars: dict | None = None, *, check: bool = False,
                 limit: str | None = None, tags: str | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
        path = Path(playbook)
        if not path.is_absolute():
            path = self.scenario_dir / path
        # --diff: a run that should have changed nothing shows what it changed (no_log tasks excepted).
        cmd = ["ansible-playbook", "-i", self.inventory, str(path), "--diff"]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        if limit:
            cmd += ["--limit", limit]
        if tags:
            cmd += ["--tags", tags]
        env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=self.scenario_dir)


def inventory_host(name: str):
    """The testinfra host of inventory host `name`, reached through the scenario's own inventory
    (its connection, as molecule's runs use it)."""
    import testinfra

    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


@pytest.fixture(scope="session")
def ansible_playbook() -> PlaybookRun:
    return PlaybookRun()


def changed_tasks(output: str) -> list[str]:
    """'TASK name: changed: [host]' for every task an ansible-playbook run reported as changed,
    followed by the --diff lines the run printed for it, to show in an assertion's message what a
    run that should change nothing changed."""
    found, task, diff = [], "", []
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task, diff = line.rstrip("* ").strip(), []
        elif line.startswith(("--- ", "+++ ", "@@ ", "-", "+")):
            diff.append(line)
        elif line.startswith("changed: ["):
            found.append("%s: %s" % (task, line.split(" =>")[0]))
            found.extend("    " + d for d in diff[:40])
            diff = []
    return found


def wait_until(check, timeout: float = 30.0, interval: float = 0.5):
    """Call `check` until it returns a true value and return that value. At the deadline return
    its last (false) result, or re-raise the AssertionError it last raised, for the caller's own
    assert to report. What replication settles, alerts firing, WAL archived: state that arrives."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        else:
            if result or time.monotonic() > deadline:
                return result
        time.sleep(interval)


def recap_changed(output: str) -> int:
    """Sum of changed=N over the PLAY RECAP lines of an ansible-playbook run."""
    total = 0
    for line in output.splitlines():
        if " changed=" in line and " ok=" in line:
            total += int(line.split(" changed=")[1].split()[0])
    return total


@pytest.fixture(scope="session")
def generated_secrets() -> dict:
    """The secrets role's Vault-encrypted file of this scenario's inventory, decrypted with the
    scenario's ANSIBLE_VAULT_PASSWORD_FILE (as an operator reads it: ansible-vault view)."""
    import yaml

    path = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / "group_vars" / "all" / "vault_generated.yml"
    out = subprocess.run(["ansible-vault", "view", str(path)], capture_output=True, text=True, check=True)
    return yaml.safe_load(out.stdout)
