# -*- coding: utf-8 -*-
"""paths_differ and systemd_units: what one find and one systemctl show tell a role.

The inputs are what the modules print on a Debian 12 host (copied from a converged sandbox host),
and every expected answer is written out by hand.
"""

import pytest
from ansible.errors import AnsibleFilterError

from paths_differ import FilterModule as PathsModule, paths_differ
from systemd_units import FilterModule as UnitsModule, systemd_units

# As ansible.builtin.find returns them (file_type=any, get_checksum=true): a directory has no checksum.
FOUND = {
    "files": [
        {"path": "/etc/redis", "isdir": True, "isreg": False, "mode": "2770", "pw_name": "redis",
         "gr_name": "redis", "uid": 101, "gid": 102},
        {"path": "/etc/redis/redis-6380.conf", "isdir": False, "isreg": True, "mode": "0640",
         "pw_name": "redis", "gr_name": "redis", "uid": 101, "gid": 102,
         "checksum": "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"path": "/etc/redis/acl", "isdir": False, "isreg": True, "mode": "0750", "pw_name": "root",
         "gr_name": "redis", "uid": 0, "gid": 102, "checksum": "0" * 40},
    ],
    "matched": 3,
}
CONF = {"path": "/etc/redis/redis-6380.conf", "owner": "redis", "group": "redis", "mode": "0640",
        "checksum": "da39a3ee5e6b4b0d3255bfef95601890afd80709"}
DIR = {"path": "/etc/redis", "owner": "redis", "group": "redis", "mode": "2770", "state": "directory"}


@pytest.mark.parametrize("wanted, expected", [
    pytest.param([DIR, CONF], [], id="all-in-place"),
    pytest.param([dict(CONF, checksum="1" * 40)], ["/etc/redis/redis-6380.conf"], id="other-content"),
    pytest.param([dict(CONF, mode="0644")], ["/etc/redis/redis-6380.conf"], id="other-mode"),
    pytest.param([dict(CONF, owner="root")], ["/etc/redis/redis-6380.conf"], id="other-owner"),
    pytest.param([dict(CONF, group="adm")], ["/etc/redis/redis-6380.conf"], id="other-group"),
    pytest.param([dict(CONF, owner=101, group="102")], [], id="owner-and-group-by-number"),
    pytest.param([dict(DIR, mode="0750")], ["/etc/redis"], id="directory-other-mode"),
    pytest.param([dict(DIR, path="/etc/redis/")], [], id="trailing-slash"),
    pytest.param([{"path": "/etc/redis/acl", "owner": "root", "group": "redis", "mode": "0750",
                   "state": "directory"}], ["/etc/redis/acl"], id="a-file-where-a-directory-belongs"),
    pytest.param([dict(DIR, path="/etc/redis/redis-6380.conf", owner="redis", mode="0640")],
                 ["/etc/redis/redis-6380.conf"], id="a-directory-wanted-a-file-there"),
    pytest.param([dict(CONF, path="/etc/redis/redis-6381.conf"), DIR, dict(CONF, path="/etc/redis/users.acl")],
                 ["/etc/redis/redis-6381.conf", "/etc/redis/users.acl"], id="missing-in-wanted-order"),
])
def test_paths_differ(wanted, expected):
    assert paths_differ(FOUND, wanted) == expected


def test_paths_differ_takes_the_files_list_and_an_empty_find():
    assert paths_differ(FOUND["files"], [CONF]) == []
    assert paths_differ({"files": [], "skipped_paths": {"/etc/redis": "not a directory"}}, [DIR, CONF]) == \
        ["/etc/redis", "/etc/redis/redis-6380.conf"]


@pytest.mark.parametrize("found, wanted, message", [
    pytest.param("nope", [CONF], "input must be a find result", id="not-a-find"),
    pytest.param(FOUND, CONF, "wanted must be a list", id="wanted-not-a-list"),
    pytest.param(FOUND, ["x"], r"wanted\[0\] must be a dict", id="item-not-a-dict"),
    pytest.param(FOUND, [{"path": "/x", "mode": "0644"}], r"wanted\[0\] lacks owner, group", id="fields"),
    pytest.param(FOUND, [dict(CONF, state="directory")], "either checksum", id="both"),
    pytest.param(FOUND, [{"path": "/x", "owner": "r", "group": "r", "mode": "0644"}], "either checksum",
                 id="neither"),
    pytest.param(FOUND, [dict(CONF, mode="rw-r--r--")], "four octal digits", id="mode"),
])
def test_paths_differ_refuses(found, wanted, message):
    with pytest.raises(AnsibleFilterError, match=message):
        paths_differ(found, wanted)


# systemctl show --property=Id,LoadState,ActiveState,SubState,UnitFileState on a sandbox Redis host.
SHOW = """Id=redis-server@6380.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled

Id=redis-server@6379.service
LoadState=loaded
ActiveState=inactive
SubState=dead
UnitFileState=disabled

Id=redis-server.service
LoadState=masked
ActiveState=failed
SubState=failed
UnitFileState=masked

Id=redis-backup.timer
LoadState=loaded
ActiveState=active
SubState=waiting
UnitFileState=enabled

Id=nosuch.service
LoadState=not-found
ActiveState=inactive
SubState=dead
UnitFileState=
"""
UNITS = ["redis-server@6380.service", "redis-server@6379.service", "redis-server.service",
         "redis-backup.timer", "nosuch.service"]


def test_systemd_units_parses_every_block_by_name():
    parsed = systemd_units(SHOW, UNITS)
    assert list(parsed) == UNITS
    assert parsed["redis-server@6380.service"]["SubState"] == "running"
    assert parsed["redis-server.service"]["LoadState"] == "masked"
    assert parsed["nosuch.service"]["UnitFileState"] == ""
    assert systemd_units(SHOW.splitlines(), UNITS) == parsed


@pytest.mark.parametrize("wanted, expected", [
    pytest.param({"redis-server@6380.service": "running", "redis-server@6379.service": "running"},
                 ["redis-server@6380.service"], id="running"),
    pytest.param({"redis-server@6379.service": "stopped", "redis-server@6380.service": "stopped"},
                 ["redis-server@6379.service"], id="stopped"),
    pytest.param({"redis-server.service": "masked", "redis-backup.timer": "masked"},
                 ["redis-server.service"], id="masked"),
    pytest.param({"redis-backup.timer": "started", "redis-server@6379.service": "started"},
                 ["redis-backup.timer"], id="started-whatever-enabled"),
    pytest.param({"nosuch.service": "absent", "redis-backup.timer": "absent"}, ["nosuch.service"], id="absent"),
    pytest.param({"nosuch.service": "stopped"}, ["nosuch.service"], id="a-unit-not-found-is-stopped"),
    pytest.param({"nosuch.service": "running"}, [], id="a-unit-not-found-does-not-run"),
])
def test_systemd_units_wanted(wanted, expected):
    assert systemd_units(SHOW, UNITS, wanted) == expected


@pytest.mark.parametrize("output, units, wanted, message", [
    pytest.param(42, UNITS, None, "stdout or stdout_lines", id="not-output"),
    pytest.param(SHOW, UNITS[:2], None, "printed 5 blocks for 2 units", id="block-count"),
    pytest.param(SHOW, "redis", None, "units must be a list", id="units-not-a-list"),
    pytest.param(SHOW, UNITS, {"redis-backup.timer": "enabled"}, r"wanted\[redis-backup.timer\] is 'enabled'",
                 id="unknown-state"),
    pytest.param(SHOW, UNITS, {"other.service": "running"}, "units that were not shown: other.service",
                 id="not-shown"),
])
def test_systemd_units_refuses(output, units, wanted, message):
    with pytest.raises(AnsibleFilterError, match=message):
        systemd_units(output, units, wanted)


def test_filters_are_registered():
    assert PathsModule().filters()["paths_differ"] is paths_differ
    assert UnitsModule().filters()["systemd_units"] is systemd_units
