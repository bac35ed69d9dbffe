"""Run playbooks/preflight.yml once per case, several at a time, for tests/integration/preflight.yml.

Reads one JSON document on standard input: {"dir": scratch directory, "playbook": path,
"ansible_playbook": path, "env": {...}, "cases": [{"name", "inventory": {...}, "extra": {...},
"tags"}]}. Writes each case's inventory and extra vars (JSON, which Ansible reads as YAML) into the
directory, runs the first case alone (it fills the fact cache the others read), then the others
four at a time, and prints a JSON list of {"name", "rc", "output"} in the cases' order.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def main() -> int:
    spec = json.load(sys.stdin)
    env = dict(os.environ, **spec["env"])

    def run(case: dict) -> dict:
        stem = os.path.join(spec["dir"], case["name"].replace(" ", "_").replace("'", ""))
        with open(stem + ".hosts.yml", "w", encoding="utf-8") as f:
            json.dump(case["inventory"], f)
        with open(stem + ".extra.yml", "w", encoding="utf-8") as f:
            json.dump(case.get("extra") or {}, f)
        done = subprocess.run([spec["ansible_playbook"], "-i", stem + ".hosts.yml", "-e", "@" + stem + ".extra.yml",
                               "--tags", case.get("tags") or "all", spec["playbook"]],
                              capture_output=True, text=True, env=env, check=False, timeout=600)
        return {"name": case["name"], "rc": done.returncode, "output": done.stdout + done.stderr}

    cases = spec["cases"]
    results = [run(cases[0])]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results += list(pool.map(run, cases[1:]))
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
