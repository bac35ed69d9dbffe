# -*- coding: utf-8 -*-
"""Test oracle: PGTune's output for PostgreSQL on Linux, transcribed separately from the filter.

Transcribed by hand, selector by selector, from PGTune (https://github.com/le0pard/pgtune):
src/features/configuration/configurationSlice.js (selectors) and
src/common/components/configurationView/index.jsx (formatValue, the printed order, and the
rule that empty values are not printed).  It is written independently of
filter_plugins/pg_tune.py - works in bytes and JavaScript-style lookup tables the way the
source does, and renders the text lines PGTune shows - so that a slip in one shows up as a
difference against the other.  No upstream code is copied here.

``pgtune_lines(...)`` returns the ``name = value`` lines PGTune prints, without comments.
"""

import math

SIZE_UNIT_MAP = {"KB": 1024, "MB": 1048576, "GB": 1073741824}


def _format_value(value):
    # configurationView formatValue: GB or MB only when the kB value divides evenly
    if value % 1048576 == 0:
        return "%dGB" % (value // 1048576)
    if value % 1024 == 0:
        return "%dMB" % (value // 1024)
    return "%dkB" % value


def _js(value):
    # how JavaScript's template string prints a number
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def pgtune_lines(total_memory, total_memory_unit, db_type, hd_type, cpu_num=None,
                 connection_num=None, db_version=15, db_size="mid_ram"):
    kb = SIZE_UNIT_MAP["KB"]
    mb_in_kb = SIZE_UNIT_MAP["MB"] / kb
    gb_in_kb = SIZE_UNIT_MAP["GB"] / kb
    total_kb = total_memory * SIZE_UNIT_MAP[total_memory_unit] / kb

    max_connections = connection_num if connection_num else {
        "web": 200, "oltp": 300, "dw": 40, "desktop": 20, "mixed": 100}[db_type]

    shared_buffers = {
        "web": math.floor(total_kb / 4), "oltp": math.floor(total_kb / 4),
        "dw": math.floor(total_kb / 4), "desktop": math.floor(total_kb / 16),
        "mixed": math.floor(total_kb / 4)}[db_type]

    huge_pages = "try" if shared_buffers >= 2 * gb_in_kb else "off"

    effective_cache_size = {
        "web": math.floor(total_kb * 3 / 4), "oltp": math.floor(total_kb * 3 / 4),
        "dw": math.floor(total_kb * 3 / 4), "desktop": math.floor(total_kb / 4),
        "mixed": math.floor(total_kb * 3 / 4)}[db_type]

    maintenance = {
        "web": math.floor(total_kb / 16), "oltp": math.floor(total_kb / 16),
        "dw": math.floor(total_kb / 8), "desktop": math.floor(total_kb / 16),
        "mixed": math.floor(total_kb / 16)}[db_type]
    limit = 8 * gb_in_kb
    if maintenance >= limit:
        maintenance = limit

    min_wal = {"web": 1024, "oltp": 2048, "dw": 4096, "desktop": 100, "mixed": 1024}[db_type] * mb_in_kb
    max_wal = {"web": 4096, "oltp": 8192, "dw": 16384, "desktop": 2048, "mixed": 4096}[db_type] * mb_in_kb

    wal_buffers = math.floor(3 * shared_buffers / 100)
    max_wal_buffer = 16 * mb_in_kb
    if wal_buffers > max_wal_buffer:
        wal_buffers = max_wal_buffer
    near = 14 * mb_in_kb
    if near < wal_buffers < max_wal_buffer:
        wal_buffers = max_wal_buffer
    if wal_buffers < 32:
        wal_buffers = 32

    stats = {"web": 100, "oltp": 100, "dw": 500, "desktop": 100, "mixed": 100}[db_type]

    if db_size == "less_ram":
        random_page_cost = 1.1
    elif hd_type == "hdd":
        random_page_cost = 4
    elif db_type == "dw":
        random_page_cost = 4
    else:
        random_page_cost = 1.1

    io_concurrency = {"hdd": 2, "ssd": 200, "san": 300, "nvme": 1000}[hd_type]

    parallel = []
    if cpu_num and cpu_num >= 4:
        per_gather = math.ceil(cpu_num / 2)
        if db_type != "dw" and per_gather > 4:
            per_gather = 4
        parallel = [["max_worker_processes", cpu_num], ["max_parallel_workers_per_gather", per_gather]]
        if db_version >= 10:
            parallel.append(["max_parallel_workers", cpu_num])
        if db_version >= 11:
            maint_workers = math.ceil(cpu_num / 2)
            if maint_workers > 4:
                maint_workers = 4
            parallel.append(["max_parallel_maintenance_workers", maint_workers])

    workers = 8
    for key, value in parallel:
        if key == "max_worker_processes" and value and value > 0:
            workers = value
    work_mem_value = (total_kb - shared_buffers) / ((max_connections + workers) * 3)
    work_mem = {
        "web": math.floor(work_mem_value), "oltp": math.floor(work_mem_value),
        "dw": math.floor(work_mem_value / 2), "desktop": math.floor(work_mem_value / 6),
        "mixed": math.floor(work_mem_value / 2)}[db_type]
    if db_size == "less_ram":
        work_mem = math.floor(work_mem * 1.3)
    elif db_size == "greater_ram":
        work_mem = math.floor(work_mem * 0.9)
    if work_mem < 4 * mb_in_kb:
        work_mem = 4 * mb_in_kb

    wal_level = []
    if db_type == "desktop":
        wal_level = [["wal_level", "minimal"], ["max_wal_senders", "0"]]

    jit = "off" if db_version >= 12 and db_type in ("web", "oltp", "mixed") else None

    if db_version >= 15:
        wal_compression = "lz4"
    elif db_version >= 10:
        wal_compression = "on"
    else:
        wal_compression = None

    if not cpu_num:
        av_workers = None
    elif cpu_num >= 32:
        av_workers = 5
    elif cpu_num >= 16:
        av_workers = 4
    else:
        av_workers = None

    av_work_mem = 2 * gb_in_kb if maintenance >= 2 * gb_in_kb else None

    io_method = None if db_version < 18 else "io_uring"
    io_workers = None
    if db_version >= 18 and cpu_num:
        candidate = min(32, max(3, math.floor(cpu_num / 4)))
        io_workers = candidate if candidate > 3 else None

    config = [
        ["max_connections", max_connections],
        ["shared_buffers", _format_value(shared_buffers)],
        ["effective_cache_size", _format_value(effective_cache_size)],
        ["maintenance_work_mem", _format_value(maintenance)],
        ["checkpoint_completion_target", 0.9],
        ["wal_buffers", _format_value(wal_buffers)],
        ["default_statistics_target", stats],
        ["random_page_cost", random_page_cost],
        ["effective_io_concurrency", io_concurrency],
        ["work_mem", _format_value(work_mem)],
        ["huge_pages", huge_pages],
        ["jit", jit],
        ["wal_compression", wal_compression],
        ["autovacuum_max_workers", av_workers],
        ["autovacuum_work_mem", _format_value(av_work_mem) if av_work_mem else None],
        ["io_method", io_method],
        ["io_workers", io_workers],
        ["min_wal_size", _format_value(min_wal)],
        ["max_wal_size", _format_value(max_wal)],
    ] + parallel + wal_level
    # the view prints only truthy values (JavaScript truthiness: 0, null, '' are dropped)
    return ["%s = %s" % (key, _js(value)) for key, value in config if value]
