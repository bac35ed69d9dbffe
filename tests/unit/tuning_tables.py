# -*- coding: utf-8 -*-
"""Render the generated tables of docs/tuning.md from the filters themselves.

    .venv/bin/python tests/unit/tuning_tables.py --write   # rewrite the tables in docs/tuning.md
    .venv/bin/python tests/unit/tuning_tables.py           # print them

tests/unit/test_tuning_doc.py fails when the document and the filters disagree.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "filter_plugins"))

from memory_budget import memory_budget  # noqa: E402  (path set above)
from pg_hugepages import pg_hugepages  # noqa: E402
from pg_tune import pg_tune  # noqa: E402
from redis_memory_plan import redis_memory_plan  # noqa: E402

DOC = os.path.join(ROOT, "docs", "tuning.md")

# Azure shapes of the same size, for orientation (B-series burstable, Dsv3 general purpose)
VM_SIZES = [
    ("B1ms", 2, 1),
    ("B2s", 4, 2),
    ("D2s_v3", 8, 2),
    ("D4s_v3 (the seeds' server)", 16, 4),
    ("D8s_v3", 32, 8),
    ("D16s_v3", 64, 16),
]


def _hugepages(tuning):
    return pg_hugepages(tuning["shared_buffers"], max_connections=tuning["max_connections"],
                        wal_buffers=tuning["wal_buffers"],
                        max_worker_processes=tuning.get("max_worker_processes", 8),
                        autovacuum_max_workers=tuning.get("autovacuum_max_workers", 3))


def pg_vm_sizes():
    head = ("| VM (Azure shape) | RAM / vCPU | shared_buffers | effective_cache_size | maintenance_work_mem "
            "| work_mem | wal_buffers | huge_pages | parallel per gather / workers | vm.nr_hugepages |")
    rows = [head, "|---" * (head.count("|") - 1) + "|"]
    for name, gigabytes, cpus in VM_SIZES:
        tuning = pg_tune(gigabytes * 1024, cpus, workload="web", storage="ssd")
        parallel = "-"
        if "max_worker_processes" in tuning:
            parallel = f"{tuning['max_parallel_workers_per_gather']} / {tuning['max_parallel_workers']}"
        rows.append(
            f"| {name} | {gigabytes} GB / {cpus} | {tuning['shared_buffers']} | {tuning['effective_cache_size']} "
            f"| {tuning['maintenance_work_mem']} | {tuning['work_mem']} | {tuning['wal_buffers']} "
            f"| {tuning['huge_pages']} | {parallel} | {_hugepages(tuning)} |")
    return "\n".join(rows)


def pg_workloads_16gb():
    workloads = ["web", "oltp", "dw", "mixed", "desktop"]
    results = {w: pg_tune(16384, 4, workload=w, storage="ssd") for w in workloads}
    names = []
    for result in results.values():
        names += [n for n in result if n not in names]
    rows = ["| setting | " + " | ".join(workloads) + " |", "|---|" + "---|" * len(workloads)]
    for name in names:
        rows.append(f"| {name} | " + " | ".join(str(results[w].get(name, "-")) for w in workloads) + " |")
    return "\n".join(rows)


# The seeds' hand-written values: seed 000's Terraform for its GP_Standard_D4s_v3 (4 vCore /
# 16 GB), seed 003 section 3.1.2 for its Standard_D4s_v3 (4 vCore / 16 GB), seed 004 appendix A,
# which calls 8GB "25 % of RAM", so a 32 GB server
SEED_000 = {"shared_buffers": "1GB", "effective_cache_size": "3GB", "work_mem": "64MB",
            "maintenance_work_mem": "256MB", "random_page_cost": "1.1", "effective_io_concurrency": "200",
            "max_connections": "150", "jit": "on"}
SEED_003 = {"shared_buffers": "4GB", "effective_cache_size": "12GB", "work_mem": "32MB",
            "maintenance_work_mem": "512MB", "max_connections": "200", "checkpoint_completion_target": "0.9",
            "wal_buffers": "16MB", "max_wal_size": "4GB"}
SEED_004 = {"shared_buffers": "8GB", "effective_cache_size": "24GB", "work_mem": "64MB",
            "maintenance_work_mem": "1GB", "wal_buffers": "16MB", "checkpoint_completion_target": "0.9",
            "max_wal_size": "4GB", "min_wal_size": "1GB", "random_page_cost": "1.1",
            "effective_io_concurrency": "200"}


def pg_vs_seeds():
    ours_16 = pg_tune(16384, 4, workload="web", storage="ssd")
    ours_32 = pg_tune(32768, 8, workload="web", storage="ssd")
    names = [n for n in ours_16 if n in SEED_000 or n in SEED_003 or n in SEED_004]
    rows = ["| setting | seed 000 (16 GB / 4 vCore) | seed 003 §3.1.2 (16 GB / 4 vCore) "
            "| pg_tune 16 GB / 4, web | seed 004 appendix A (32 GB) | pg_tune 32 GB / 8, web |",
            "|---|---|---|---|---|---|"]
    for name in names:
        rows.append(f"| {name} | {SEED_000.get(name, '-')} | {SEED_003.get(name, '-')} | {ours_16[name]} "
                    f"| {SEED_004.get(name, '-')} | {ours_32[name]} |")
    return "\n".join(rows)


REDIS_CASES = [
    # host RAM GB, PostgreSQL on the host, Redis instances
    (4, False, 1),
    (8, False, 1),
    (16, False, 1),
    (16, False, 3),
    (32, False, 4),
    (16, True, 2),
]


def redis_plans():
    rows = ["| host | Redis budget | instances | maxmemory | reserved (non-cache) | fragmentation | "
            "maxmemory-clients | replica buffer / backlog | copy-on-write (1 fork) | worst case / budget |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for gigabytes, postgresql, instances in REDIS_CASES:
        budget = memory_budget(gigabytes * 1024, postgresql=postgresql, redis_instances=instances)
        result = redis_memory_plan(budget["redis_mb"], instances)
        plan, config = result["plan"], result["config"]
        host = f"{gigabytes} GB" + (" with PostgreSQL" if postgresql else "")
        rows.append(
            f"| {host} | {plan['budget_mb']} MB | {instances} | {config['maxmemory']} | {plan['reserved_mb']} MB "
            f"| {plan['fragmentation_reserved_mb']} MB | {config['maxmemory-clients']} "
            f"| {plan['replica_buffer_hard_mb']} MB / {plan['repl_backlog_mb']} MB | {plan['cow_mb']} MB "
            f"| {plan['worst_case_host_mb']} / {plan['budget_mb']} MB |")
    return "\n".join(rows)


def budgets():
    rows = ["| host | PostgreSQL | Redis instances | OS reserve | PostgreSQL share | Redis share (each) |",
            "|---|---|---|---|---|---|"]
    for gigabytes, postgresql, instances in [(4, True, 0), (16, True, 0), (16, True, 1), (16, True, 2),
                                             (64, True, 2), (16, False, 3)]:
        b = memory_budget(gigabytes * 1024, postgresql=postgresql, redis_instances=instances)
        rows.append(f"| {gigabytes} GB | {'yes' if postgresql else 'no'} | {instances} | {b['os_reserve_mb']} MB "
                    f"| {b['postgresql_mb']} MB | {b['redis_mb']} MB ({b['redis_per_instance_mb']} MB) |")
    return "\n".join(rows)


TABLES = {
    "pg-vm-sizes": pg_vm_sizes,
    "pg-workloads-16gb": pg_workloads_16gb,
    "pg-vs-seeds": pg_vs_seeds,
    "memory-budgets": budgets,
    "redis-plans": redis_plans,
}


def render(text):
    """Replace every generated block of the document with a fresh rendering."""
    for name, make in TABLES.items():
        pattern = re.compile(
            r"(<!-- BEGIN GENERATED %s -->\n).*?(<!-- END GENERATED %s -->)" % (name, name), re.S)
        if not pattern.search(text):
            raise SystemExit(f"docs/tuning.md has no generated block {name}")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        with open(DOC, encoding="utf-8") as handle:
            rendered = render(handle.read())
        with open(DOC, "w", encoding="utf-8") as handle:
            handle.write(rendered)
    else:
        for table_name, table in TABLES.items():
            print(f"<!-- {table_name} -->\n{table()}\n")
