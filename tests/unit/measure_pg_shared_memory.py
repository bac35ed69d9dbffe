# -*- coding: utf-8 -*-
"""Measure PostgreSQL's own shared_memory_size_in_huge_pages against pg_hugepages' estimate.

Usage (as root or as the postgres user, on a machine with the PostgreSQL 15 server packages):

    .venv/bin/python tests/unit/measure_pg_shared_memory.py [COUNT]

Creates a throw-away cluster in a temporary directory, asks `postgres -C` for COUNT (300) random
configurations and prints the worst under- and over-estimate by shared_buffers.  This is how the
coefficients in filter_plugins/pg_hugepages.py and the MEASURED rows of test_pg_hugepages.py were
obtained.  Nothing is started: `postgres -C` only computes.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "filter_plugins"))

from pg_hugepages import pg_hugepages  # noqa: E402  (path set above)

POSTGRES = shutil.which("postgres") or "/usr/lib/postgresql/15/bin/postgres"
INITDB = os.path.join(os.path.dirname(os.path.realpath(POSTGRES)), "initdb")


def as_postgres(argv):
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def main(count):
    rng = random.Random(1)
    base = tempfile.mkdtemp(prefix="pg_shmem_")
    try:
        if os.geteuid() == 0:
            shutil.chown(base, user="postgres")
        datadir = os.path.join(base, "data")
        as_postgres([INITDB, "-D", datadir, "-A", "trust", "--no-sync"])
        print(as_postgres([POSTGRES, "--version"]))
        worst = {}
        for _sample in range(count):
            settings = dict(
                shared_buffers=f"{rng.choice([16, 128, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072])}MB",
                max_connections=rng.choice([20, 100, 200, 300, 1000, 5000, 10000]),
                max_worker_processes=rng.choice([1, 4, 8, 16, 32]),
                autovacuum_max_workers=rng.choice([3, 4, 5]),
                max_wal_senders=rng.choice([0, 10, 20]),
                max_prepared_transactions=rng.choice([0, 0, 100]),
                max_locks_per_transaction=rng.choice([64, 64, 128, 256]),
                wal_buffers=rng.choice(["-1", "64kB", "1MB", "16MB"]),
            )
            argv = [POSTGRES, "-D", datadir, "-C", "shared_memory_size_in_huge_pages"]
            for name, value in settings.items():
                argv += ["-c", f"{name}={value}"]
            measured = int(as_postgres(argv))
            estimate = pg_hugepages(settings["shared_buffers"], settings["max_connections"],
                                    settings["wal_buffers"], settings["max_worker_processes"],
                                    settings["autovacuum_max_workers"], settings["max_wal_senders"],
                                    settings["max_prepared_transactions"],
                                    settings["max_locks_per_transaction"], extra_mb=0)
            ratio = estimate / measured
            low, high = worst.get(settings["shared_buffers"], (ratio, ratio))
            worst[settings["shared_buffers"]] = (min(low, ratio), max(high, ratio))
        print("shared_buffers  estimate/measured: lowest  highest")
        for size in sorted(worst, key=lambda s: int(s[:-2])):
            low, high = worst[size]
            print(f"{size:>14}  {low:17.4f}  {high:7.4f}")
        return 0 if min(low for low, _high in worst.values()) >= 1 else 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
