# -*- coding: utf-8 -*-
"""pg_tune: literal cases, PGTune parity on a grid, accepted input forms, and an error table."""

import itertools
import random

import pytest
from ansible.errors import AnsibleFilterError

from pg_tune import FilterModule, pg_tune
from pgtune_oracle import pgtune_lines

GB = 1024  # MB

# --- the seeds' server, worked by hand -------------------------------------------------------
# 16 GB = 16777216 kB; shared_buffers 1/4 = 4194304 kB = 4GB; effective_cache_size 3/4 = 12GB;
# maintenance_work_mem 1/16 = 1GB; wal_buffers 3 % = 125829 kB > 16MB -> 16MB;
# work_mem (16777216 - 4194304) / ((200 + 4 workers) * 3) = 20560.6 -> 20560kB
SEED_16GB_4CPU_WEB = {
    "max_connections": 200,
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "maintenance_work_mem": "1GB",
    "checkpoint_completion_target": 0.9,
    "wal_buffers": "16MB",
    "default_statistics_target": 100,
    "random_page_cost": 1.1,
    "effective_io_concurrency": 200,
    "work_mem": "20560kB",
    "huge_pages": "try",
    "jit": "off",
    "wal_compression": "lz4",
    "min_wal_size": "1GB",
    "max_wal_size": "4GB",
    "max_worker_processes": 4,
    "max_parallel_workers_per_gather": 2,
    "max_parallel_workers": 4,
    "max_parallel_maintenance_workers": 2,
}


def test_seed_server_16gb_4cpu_web_ssd():
    result = pg_tune(16 * GB, 4, workload="web", storage="ssd")
    assert result == SEED_16GB_4CPU_WEB
    # PGTune's printed order is kept
    assert list(result) == list(SEED_16GB_4CPU_WEB)


def test_seed_004_appendix_a_size_32gb_8cpu_web():
    # 32 GB: shared_buffers 8GB, effective_cache_size 24GB, maintenance_work_mem 2GB (so
    # autovacuum_work_mem 2GB), work_mem 25165824 / ((200 + 8) * 3) = 40329.8 -> 40329kB
    result = pg_tune(32 * GB, 8)
    assert result["shared_buffers"] == "8GB"
    assert result["effective_cache_size"] == "24GB"
    assert result["maintenance_work_mem"] == "2GB"
    assert result["autovacuum_work_mem"] == "2GB"
    assert result["work_mem"] == "40329kB"
    assert result["max_parallel_workers_per_gather"] == 4


# --- edge cases: (memory_mb, cpus, kwargs, expected subset, keys that must be absent) ----------
EDGE_CASES = [
    # below 4 CPUs: no parallel settings, work_mem counts PGTune's default 8 workers
    # (4194304 - 1048576) / ((200 + 8) * 3) = 5041.2
    pytest.param(4 * GB, 2, {}, {"work_mem": "5041kB", "huge_pages": "off"},
                 ["max_worker_processes", "max_parallel_workers_per_gather", "max_parallel_workers",
                  "max_parallel_maintenance_workers"], id="2-cpus-no-parallel"),
    pytest.param(4 * GB, 3, {}, {"work_mem": "5041kB"}, ["max_worker_processes"], id="3-cpus-no-parallel"),
    pytest.param(4 * GB, None, {}, {"work_mem": "5041kB"}, ["max_worker_processes", "autovacuum_max_workers"],
                 id="cpus-unknown"),
    pytest.param(4 * GB, 4, {}, {"max_worker_processes": 4, "max_parallel_workers_per_gather": 2,
                                 "max_parallel_workers": 4, "max_parallel_maintenance_workers": 2},
                 [], id="4-cpus-parallel-starts"),
    pytest.param(4 * GB, 12, {}, {"max_parallel_workers_per_gather": 4, "max_parallel_maintenance_workers": 4},
                 [], id="12-cpus-per-gather-capped-at-4"),
    pytest.param(4 * GB, 31, {"workload": "dw"}, {"max_parallel_workers_per_gather": 16,
                                                  "max_parallel_maintenance_workers": 4},
                 [], id="dw-per-gather-not-capped"),
    # wal_buffers: 3 % of shared_buffers, up to 16MB, rounded up to 16MB above 14MB
    pytest.param(1800, 4, {}, {"wal_buffers": "13824kB"}, [], id="wal-buffers-13.5MB-kept"),
    pytest.param(1866, 4, {}, {"wal_buffers": "14330kB"}, [], id="wal-buffers-just-below-14MB-kept"),
    pytest.param(1867, 4, {}, {"wal_buffers": "16MB"}, [], id="wal-buffers-just-above-14MB-rounded-to-16MB"),
    pytest.param(2000, 4, {}, {"wal_buffers": "16MB"}, [], id="wal-buffers-15MB-rounded-to-16MB"),
    pytest.param(512, 1, {"workload": "desktop"}, {"shared_buffers": "32MB", "wal_buffers": "983kB"}, [],
                 id="wal-buffers-smallest-input"),
    # maintenance_work_mem: 1/16 (1/8 dw), capped at 8GB; autovacuum_work_mem 2GB from 2GB on
    pytest.param(127 * GB, 8, {}, {"maintenance_work_mem": "8128MB", "autovacuum_work_mem": "2GB"}, [],
                 id="maintenance-below-cap"),
    pytest.param(128 * GB, 8, {}, {"maintenance_work_mem": "8GB"}, [], id="maintenance-at-cap"),
    pytest.param(100 * GB, 8, {"workload": "dw"}, {"maintenance_work_mem": "8GB"}, [], id="maintenance-dw-capped"),
    pytest.param(256 * GB, 8, {}, {"maintenance_work_mem": "8GB", "autovacuum_work_mem": "2GB"}, [],
                 id="maintenance-pgtune-test-256GB"),
    pytest.param(32 * GB, 8, {}, {"maintenance_work_mem": "2GB", "autovacuum_work_mem": "2GB"}, [],
                 id="autovacuum-work-mem-from-2GB"),
    pytest.param(31 * GB, 8, {}, {"maintenance_work_mem": "1984MB"}, ["autovacuum_work_mem"],
                 id="autovacuum-work-mem-below-2GB"),
    # huge_pages: try once shared_buffers reaches 2GB
    pytest.param(8 * GB, 4, {}, {"shared_buffers": "2GB", "huge_pages": "try"}, [], id="huge-pages-at-threshold"),
    pytest.param(8 * GB - 1, 4, {}, {"shared_buffers": "2096896kB", "huge_pages": "off"}, [],
                 id="huge-pages-just-below"),
    pytest.param(32 * GB, 4, {"workload": "desktop"}, {"shared_buffers": "2GB", "huge_pages": "try"}, [],
                 id="huge-pages-desktop-sixteenth"),
    pytest.param(31 * GB, 4, {"workload": "desktop"}, {"huge_pages": "off"}, [], id="huge-pages-desktop-below"),
    # many connections: work_mem never below 4MB (PGTune's own test case)
    pytest.param(4 * GB, 4, {"max_connections": 9999}, {"max_connections": 9999, "work_mem": "4MB"}, [],
                 id="many-connections-4MB-floor"),
    # PostgreSQL's limit: 262143 backends less autovacuum (4), launcher (1), workers (16), WAL senders (10)
    pytest.param(128 * GB, 16, {"max_connections": 262112}, {"work_mem": "4MB"}, [], id="max-connections-limit"),
    pytest.param(16 * GB, 4, {"max_connections": 20}, {"work_mem": "174762kB"}, [], id="fewest-connections"),
    # workload shapes
    pytest.param(16 * GB, 4, {"workload": "dw"}, {"max_connections": 40, "default_statistics_target": 500,
                                                  "work_mem": "47662kB", "maintenance_work_mem": "2GB",
                                                  "random_page_cost": 4, "min_wal_size": "4GB",
                                                  "max_wal_size": "16GB"}, ["jit"], id="dw"),
    pytest.param(16 * GB, 4, {"workload": "oltp"}, {"max_connections": 300, "work_mem": "13797kB",
                                                    "min_wal_size": "2GB", "max_wal_size": "8GB", "jit": "off"},
                 [], id="oltp"),
    pytest.param(16 * GB, 4, {"workload": "mixed"}, {"max_connections": 100, "work_mem": "20164kB", "jit": "off"},
                 [], id="mixed"),
    pytest.param(16 * GB, 4, {"workload": "desktop"},
                 {"max_connections": 20, "shared_buffers": "1GB", "effective_cache_size": "4GB",
                  "work_mem": "36408kB", "min_wal_size": "100MB", "max_wal_size": "2GB",
                  "wal_level": "minimal", "max_wal_senders": 0}, ["jit"], id="desktop"),
    # storage
    pytest.param(16 * GB, 4, {"storage": "hdd"}, {"random_page_cost": 4, "effective_io_concurrency": 2}, [], id="hdd"),
    pytest.param(16 * GB, 4, {"storage": "san"}, {"random_page_cost": 1.1, "effective_io_concurrency": 300}, [],
                 id="san"),
    pytest.param(16 * GB, 4, {"storage": "nvme"}, {"random_page_cost": 1.1, "effective_io_concurrency": 1000}, [],
                 id="nvme"),
    # database size relative to RAM
    pytest.param(16 * GB, 4, {"workload": "dw", "db_size": "less_ram"}, {"random_page_cost": 1.1,
                                                                         "work_mem": "61960kB"}, [],
                 id="dw-fits-in-ram"),
    pytest.param(16 * GB, 4, {"storage": "hdd", "db_size": "less_ram"}, {"random_page_cost": 1.1,
                                                                         "work_mem": "26728kB"}, [],
                 id="hdd-fits-in-ram"),
    pytest.param(16 * GB, 4, {"db_size": "greater_ram"}, {"work_mem": "18504kB"}, [], id="db-larger-than-ram"),
    # autovacuum_max_workers
    pytest.param(64 * GB, 15, {}, {}, ["autovacuum_max_workers"], id="15-cpus-default-autovacuum"),
    pytest.param(64 * GB, 16, {}, {"autovacuum_max_workers": 4}, [], id="16-cpus-4-autovacuum"),
    pytest.param(64 * GB, 32, {}, {"autovacuum_max_workers": 5}, [], id="32-cpus-5-autovacuum"),
    # PostgreSQL versions
    pytest.param(16 * GB, 4, {"pg_version": 10}, {"wal_compression": "on", "max_parallel_workers": 4},
                 ["jit", "max_parallel_maintenance_workers"], id="pg10"),
    pytest.param(16 * GB, 4, {"pg_version": 11}, {"wal_compression": "on"}, ["jit"], id="pg11"),
    pytest.param(16 * GB, 4, {"pg_version": 12}, {"jit": "off", "wal_compression": "on"}, [], id="pg12"),
    pytest.param(16 * GB, 4, {"pg_version": 17}, {"wal_compression": "lz4"}, ["io_method"], id="pg17"),
    pytest.param(16 * GB, 16, {"pg_version": 18}, {"io_method": "io_uring", "io_workers": 4}, [], id="pg18-16cpus"),
    pytest.param(16 * GB, 8, {"pg_version": 18}, {"io_method": "io_uring"}, ["io_workers"], id="pg18-8cpus"),
]


@pytest.mark.parametrize("memory_mb, cpus, kwargs, expected, absent", EDGE_CASES)
def test_edge_cases(memory_mb, cpus, kwargs, expected, absent):
    result = pg_tune(memory_mb, cpus, **kwargs)
    assert {key: result.get(key) for key in expected} == expected
    for key in absent:
        assert key not in result
    # and the oracle agrees on the whole printout
    assert _lines(result) == _oracle(memory_mb, cpus, **kwargs)


# --- published PGTune printouts ----------------------------------------------------------------
# Printouts of the PGTune web page that users pasted into public repositories. They come from
# earlier PGTune revisions, so work_mem (then divided by max_parallel_workers_per_gather) and
# the settings added since (huge_pages, jit, wal_compression, autovacuum_*) are not compared;
# every other printed line must match.
PUBLISHED = [
    pytest.param(
        dict(memory_mb=16 * GB, cpus=4, workload="web", storage="hdd", pg_version=16),
        "max_connections = 200\nshared_buffers = 4GB\neffective_cache_size = 12GB\nmaintenance_work_mem = 1GB\n"
        "checkpoint_completion_target = 0.9\nwal_buffers = 16MB\ndefault_statistics_target = 100\n"
        "random_page_cost = 4\neffective_io_concurrency = 2\nmin_wal_size = 1GB\nmax_wal_size = 4GB\n"
        "max_worker_processes = 4\nmax_parallel_workers_per_gather = 2\nmax_parallel_workers = 4\n"
        "max_parallel_maintenance_workers = 2",
        id="pg16-web-16GB-4cpu-hdd",
    ),
    pytest.param(
        dict(memory_mb=16 * GB, cpus=32, workload="web", storage="ssd", max_connections=100, pg_version=12),
        "max_connections = 100\nshared_buffers = 4GB\neffective_cache_size = 12GB\nmaintenance_work_mem = 1GB\n"
        "checkpoint_completion_target = 0.9\nwal_buffers = 16MB\ndefault_statistics_target = 100\n"
        "random_page_cost = 1.1\neffective_io_concurrency = 200\nmin_wal_size = 1GB\nmax_wal_size = 4GB\n"
        "max_worker_processes = 32\nmax_parallel_workers_per_gather = 4\nmax_parallel_workers = 32\n"
        "max_parallel_maintenance_workers = 4",
        id="pg12-web-16GB-32cpu-100conn-ssd",
    ),
    pytest.param(
        dict(memory_mb=16 * GB, cpus=8, workload="oltp", storage="hdd", max_connections=200, pg_version=14),
        "max_connections = 200\nshared_buffers = 4GB\neffective_cache_size = 12GB\nmaintenance_work_mem = 1GB\n"
        "checkpoint_completion_target = 0.9\nwal_buffers = 16MB\ndefault_statistics_target = 100\n"
        "random_page_cost = 4\neffective_io_concurrency = 2\nmin_wal_size = 2GB\nmax_wal_size = 8GB\n"
        "max_worker_processes = 8\nmax_parallel_workers_per_gather = 4\nmax_parallel_workers = 8\n"
        "max_parallel_maintenance_workers = 4",
        id="pg14-oltp-16GB-8cpu-200conn-hdd",
    ),
    pytest.param(
        dict(memory_mb=16 * GB, cpus=None, workload="desktop", storage="ssd", pg_version=14),
        "max_connections = 20\nshared_buffers = 1GB\neffective_cache_size = 4GB\nmaintenance_work_mem = 1GB\n"
        "checkpoint_completion_target = 0.9\nwal_buffers = 16MB\ndefault_statistics_target = 100\n"
        "random_page_cost = 1.1\neffective_io_concurrency = 200\nmin_wal_size = 100MB\nmax_wal_size = 2GB",
        id="pg14-desktop-16GB-ssd",
    ),
]


@pytest.mark.parametrize("kwargs, printout", PUBLISHED)
def test_matches_published_pgtune_printouts(kwargs, printout):
    result = pg_tune(**kwargs)
    for line in printout.splitlines():
        name, value = line.split(" = ")
        assert str(result[name]) == value, name


# --- PGTune parity on grids ---------------------------------------------------------------------
def _lines(result):
    return ["%s = %s" % item for item in result.items()]


def _oracle(memory_mb, cpus, workload="web", storage="ssd", max_connections=None, pg_version=15,
            db_size="mid_ram"):
    return pgtune_lines(memory_mb, "MB", workload, storage, cpus, max_connections, pg_version, db_size)


WORKLOADS = ["web", "oltp", "dw", "desktop", "mixed"]


def test_grid_matches_pgtune_ram_1_128gb_cpus_1_16_all_workloads_ssd():
    """The issue's acceptance grid: RAM 1-128 GB x CPUs 1-16 x five workloads, SSD, default connections."""
    checked, mismatches = 0, []
    for gigabytes, cpus, workload in itertools.product(range(1, 129), range(1, 17), WORKLOADS):
        ours = _lines(pg_tune(gigabytes * GB, cpus, workload=workload, storage="ssd"))
        # PGTune's form in GB units, exactly as an operator would type it
        theirs = pgtune_lines(gigabytes, "GB", workload, "ssd", cpus, None, 15)
        checked += 1
        if ours != theirs:
            mismatches.append((gigabytes, cpus, workload, sorted(set(ours) ^ set(theirs))))
    assert checked == 128 * 16 * 5 == 10240
    assert mismatches == []


def test_wider_grid_matches_pgtune():
    """Every storage, database size, PGTune version and connection count, on RAM given in MB."""
    rng = random.Random(15)
    memories = sorted({512, 513, 1000, 1866, 1867, 2047, 8191, 65535, 131072, 262144}
                      | {rng.randint(512, 200000) for _draw in range(30)})
    checked, mismatches = 0, []
    for memory_mb in memories:
        for cpus, workload, storage, db_size in itertools.product(
                [None, 1, 3, 4, 7, 16, 24, 32, 64], WORKLOADS, ["ssd", "hdd", "san", "nvme"],
                ["less_ram", "mid_ram", "greater_ram"]):
            connections = rng.choice([None, 20, 150, 1000, 9999])
            version = rng.choice(range(10, 19))
            ours = _lines(pg_tune(memory_mb, cpus, workload, storage, connections, version, db_size))
            theirs = _oracle(memory_mb, cpus, workload, storage, connections, version, db_size)
            checked += 1
            if ours != theirs:
                mismatches.append((memory_mb, cpus, workload, storage, db_size, connections, version))
    assert checked == len(memories) * 9 * 5 * 4 * 3
    assert mismatches == []


# --- accepted input forms ------------------------------------------------------------------------
@pytest.mark.parametrize("memory", [16384, "16384", " 16384 ", 16384.0, "16384.0"])
def test_memory_forms_from_facts(memory):
    assert pg_tune(memory, "4") == SEED_16GB_4CPU_WEB


def test_ansible_tagged_strings_are_accepted():
    from ansible.utils.unsafe_proxy import AnsibleUnsafeText  # what older templating hands over

    result = pg_tune(AnsibleUnsafeText("16384"), 4, workload=AnsibleUnsafeText("WEB"))
    assert result == SEED_16GB_4CPU_WEB


def test_filter_module_exposes_pg_tune():
    assert FilterModule().filters() == {"pg_tune": pg_tune}


# --- errors: (kwargs, argument named in the message, allowed values named) ------------------------
ERRORS = [
    pytest.param(dict(memory_mb=-1, cpus=4), "memory_mb", ">= 512", id="memory-negative"),
    pytest.param(dict(memory_mb=0, cpus=4), "memory_mb", ">= 512", id="memory-zero"),
    pytest.param(dict(memory_mb=511, cpus=4), "memory_mb", "512 MB", id="memory-below-pgtune-minimum"),
    pytest.param(dict(memory_mb=1536.5, cpus=4), "memory_mb", "whole number", id="memory-fraction"),
    pytest.param(dict(memory_mb="1.5GB", cpus=4), "memory_mb", "whole number", id="memory-text-with-unit"),
    pytest.param(dict(memory_mb="2048.5", cpus=4), "memory_mb", "whole number", id="memory-fraction-text"),
    pytest.param(dict(memory_mb=True, cpus=4), "memory_mb", "whole number", id="memory-bool"),
    pytest.param(dict(memory_mb=None, cpus=4), "memory_mb", "whole number", id="memory-none"),
    pytest.param(dict(memory_mb=[16384], cpus=4), "memory_mb", "whole number", id="memory-list"),
    pytest.param(dict(memory_mb=float("nan"), cpus=4), "memory_mb", "whole number", id="memory-nan"),
    pytest.param(dict(memory_mb=16384, cpus=0), "cpus", ">= 1", id="cpus-zero"),
    pytest.param(dict(memory_mb=16384, cpus=-2), "cpus", ">= 1", id="cpus-negative"),
    pytest.param(dict(memory_mb=16384, cpus=2.5), "cpus", "whole number", id="cpus-fraction"),
    pytest.param(dict(memory_mb=16384, cpus=False), "cpus", "whole number", id="cpus-bool"),
    pytest.param(dict(memory_mb=16384, cpus=4, workload="olap"), "workload", "web, oltp, dw, desktop, mixed",
                 id="workload-unknown"),
    pytest.param(dict(memory_mb=16384, cpus=4, workload=None), "workload", "web, oltp, dw, desktop, mixed",
                 id="workload-none"),
    pytest.param(dict(memory_mb=16384, cpus=4, storage="ramdisk"), "storage", "ssd, hdd, san, nvme",
                 id="storage-unknown"),
    pytest.param(dict(memory_mb=16384, cpus=4, storage=1), "storage", "ssd, hdd, san, nvme", id="storage-int"),
    pytest.param(dict(memory_mb=16384, cpus=4, max_connections=19), "max_connections", "20 to 262143",
                 id="connections-below-pgtune-minimum"),
    pytest.param(dict(memory_mb=16384, cpus=4, max_connections=262144), "max_connections", "20 to 262143",
                 id="connections-above-postgresql-maximum"),
    pytest.param(dict(memory_mb=128 * GB, cpus=16, max_connections=262113), "max_connections", "20 to 262112",
                 id="connections-above-postgresql-backends"),
    pytest.param(dict(memory_mb=16384, cpus=2, max_connections=262122), "max_connections", "20 to 262121",
                 id="connections-above-postgresql-backends-defaults"),
    pytest.param(dict(memory_mb=16384, cpus=4, max_connections=100.5), "max_connections", "whole number",
                 id="connections-fraction"),
    pytest.param(dict(memory_mb=16384, cpus=4, pg_version=9), "pg_version", "10, 11", id="version-too-old"),
    pytest.param(dict(memory_mb=16384, cpus=4, pg_version=19), "pg_version", "17, 18", id="version-too-new"),
    pytest.param(dict(memory_mb=16384, cpus=4, pg_version="15.2"), "pg_version", "one of", id="version-minor"),
    pytest.param(dict(memory_mb=16384, cpus=4, db_size="huge"), "db_size", "less_ram, mid_ram, greater_ram",
                 id="db-size-unknown"),
]


@pytest.mark.parametrize("kwargs, argument, allowed", ERRORS)
def test_bad_input_names_argument_and_allowed_values(kwargs, argument, allowed):
    with pytest.raises(AnsibleFilterError) as error:
        pg_tune(**kwargs)
    message = str(error.value)
    assert message.startswith("pg_tune: ")
    assert argument in message
    assert allowed in message
