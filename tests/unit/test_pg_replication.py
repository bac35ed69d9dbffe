# -*- coding: utf-8 -*-
"""pg_replication: the plan for the seeds' topologies, what changes on a promotion, and an error table."""

import pytest
from ansible.errors import AnsibleFilterError

from pg_replication import FilterModule, application_name, pg_replication

SEED = [
    {"name": "pg-prod-1.example.internal", "role": "primary", "zone": "1"},
    {"name": "pg-prod-2.example.internal", "role": "replica", "mode": "sync", "zone": "2"},
    {"name": "pg-prod-3.example.internal", "role": "replica", "mode": "async", "zone": "dr"},
]
THREE = [
    {"name": "pg1", "role": "primary", "zone": "1"},
    {"name": "pg2", "role": "replica", "mode": "sync", "zone": "2"},
    {"name": "pg3", "role": "replica", "mode": "async", "zone": "3"},
]
RESTART_SETTINGS = {"wal_level", "max_wal_senders", "max_replication_slots", "hot_standby", "wal_log_hints"}


def test_registered_as_filter():
    assert FilterModule().filters() == {"pg_replication": pg_replication}


def test_seed_topology():
    plan = pg_replication(SEED)
    assert plan["primary"] == "pg-prod-1.example.internal"
    assert plan["replicas"] == ["pg-prod-2.example.internal", "pg-prod-3.example.internal"]
    assert plan["sync_replicas"] == ["pg-prod-2.example.internal"]
    assert plan["synchronous_standby_names"] == 'ANY 1 ("pg_prod_2_example_internal")'
    assert plan["primary_settings"] == {"synchronous_standby_names": 'ANY 1 ("pg_prod_2_example_internal")'}
    assert plan["replica_settings"] == {"synchronous_standby_names": ""}
    assert plan["members"][1] == {
        "name": "pg-prod-2.example.internal", "role": "replica", "mode": "sync", "zone": "2",
        "application_name": "pg_prod_2_example_internal", "slot_name": "pg_prod_2_example_internal",
    }
    assert plan["members"][0]["mode"] is None
    assert plan["settings"] == {
        "wal_level": "replica", "max_wal_senders": 10, "max_replication_slots": 10,
        "max_slot_wal_keep_size": "10GB", "hot_standby": True, "hot_standby_feedback": True,
        "wal_log_hints": True, "synchronous_commit": "on",
    }
    assert plan["warnings"] == []


def test_single_server_gets_the_same_settings_and_no_synchronous_standby():
    alone = pg_replication([{"name": "pg1"}])
    assert alone["primary"] == "pg1" and alone["replicas"] == []
    assert alone["synchronous_standby_names"] == ""
    # adding replicas later changes no setting that needs a restart
    grown = pg_replication(THREE)
    assert {k: alone["settings"][k] for k in RESTART_SETTINGS} == {k: grown["settings"][k] for k in RESTART_SETTINGS}
    assert alone["settings"] == grown["settings"]


def test_promotion_changes_only_the_reloadable_setting():
    before = pg_replication(THREE)
    after = pg_replication(THREE, primary="pg2")
    assert after["primary"] == "pg2"
    assert after["replicas"] == ["pg1", "pg3"]
    # pg1 carries no mode in THREE: as a replica it is asynchronous; pg2, now primary, is not a standby
    assert after["sync_replicas"] == []
    assert after["synchronous_standby_names"] == ""
    assert after["settings"] == before["settings"]
    assert [m["role"] for m in after["members"]] == ["replica", "primary", "replica"]


def test_primary_overrides_roles():
    members = [dict(m, role="primary") for m in THREE]
    assert pg_replication(members, primary="pg3")["replicas"] == ["pg1", "pg2"]


@pytest.mark.parametrize("count, expected", [
    (1, 'ANY 1 ("pg2", "pg3")'),
    (2, 'ANY 2 ("pg2", "pg3")'),
    (5, 'ANY 2 ("pg2", "pg3")'),
])
def test_quorum_of_synchronous_replicas(count, expected):
    members = [dict(m, mode="sync") for m in THREE]
    plan = pg_replication(members, synchronous_standby_count=count)
    assert plan["synchronous_standby_names"] == expected
    assert bool(plan["warnings"]) == (count > 2)


def test_sync_replica_in_the_primary_zone_is_a_warning():
    members = [dict(m, zone="1") for m in THREE]
    plan = pg_replication(members)
    assert plan["synchronous_standby_names"] == 'ANY 1 ("pg2")'
    assert plan["warnings"] == ["synchronous replica pg2 is in the primary's zone '1': losing that zone loses both"]


@pytest.mark.parametrize("kwargs, key, value", [
    ({"max_slot_wal_keep_size": -1}, "max_slot_wal_keep_size", -1),
    ({"max_slot_wal_keep_size": "-1"}, "max_slot_wal_keep_size", -1),
    ({"max_slot_wal_keep_size": 2048}, "max_slot_wal_keep_size", 2048),
    ({"max_slot_wal_keep_size": "512MB"}, "max_slot_wal_keep_size", "512MB"),
    ({"hot_standby_feedback": "off"}, "hot_standby_feedback", False),
    ({"wal_log_hints": False}, "wal_log_hints", False),
    ({"synchronous_commit": "remote_apply"}, "synchronous_commit", "remote_apply"),
    ({"max_wal_senders": "12"}, "max_wal_senders", 12),
    ({"max_replication_slots": 4}, "max_replication_slots", 4),
])
def test_options(kwargs, key, value):
    assert pg_replication(THREE, **kwargs)["settings"][key] == value


@pytest.mark.parametrize("name, expected", [
    ("pg2", "pg2"),
    ("PG-Prod-2.example.internal", "pg_prod_2_example_internal"),
    ("db 1", "db_1"),
    ("x" * 80, "x" * 63),
])
def test_application_name(name, expected):
    assert application_name(name) == expected


def test_names_and_zones_are_read_leniently():
    plan = pg_replication(["a", {"name": "b", "role": "replica", "zone": 2}])
    assert plan["primary"] == "a"
    assert plan["members"][1]["zone"] == "2" and plan["members"][1]["mode"] == "async"


ERRORS = [
    ([], {}, "members must be a non-empty list"),
    ("pg1", {}, "members must be a non-empty list"),
    ([42], {}, "members[0] must be a mapping"),
    ([{"role": "primary"}], {}, "members[0].name must be a non-empty string"),
    ([{"name": "pg1", "role": "leader"}], {}, "members[pg1].role must be primary or replica"),
    ([{"name": "pg1"}, {"name": "pg2", "role": "replica", "mode": "semi"}], {}, "members[pg2].mode must be sync or async"),
    ([{"name": "pg1"}, {"name": "pg1", "role": "replica"}], {}, "members must be unique names; got ['pg1']"),
    ([{"name": "pg-1"}, {"name": "pg_1", "role": "replica"}], {}, "names that stay distinct"),
    ([{"name": "pg1"}, {"name": "pg2"}], {}, "exactly one member with role primary (or give primary); got ['pg1', 'pg2']"),
    ([{"name": "pg1", "role": "replica"}], {}, "exactly one member with role primary"),
    (THREE, {"primary": "pg9"}, "primary must be one of the members (pg1, pg2, pg3); got 'pg9'"),
    (THREE, {"max_replication_slots": 1}, "max_replication_slots must be at least the number of replicas (2); got 1"),
    (THREE, {"max_wal_senders": 3}, "max_wal_senders must be at least the number of replicas + 2 (4); got 3"),
    (THREE, {"max_wal_senders": True}, "max_wal_senders must be a whole number >= 0"),
    (THREE, {"max_slot_wal_keep_size": "10 GB"}, "max_slot_wal_keep_size must be a size"),
    (THREE, {"max_slot_wal_keep_size": -2}, "max_slot_wal_keep_size must be a size"),
    (THREE, {"hot_standby_feedback": "maybe"}, "hot_standby_feedback must be a boolean"),
    (THREE, {"synchronous_commit": "sometimes"}, "synchronous_commit must be on, remote_apply"),
    (THREE, {"synchronous_standby_count": 0}, "synchronous_standby_count must be a whole number >= 1"),
]


@pytest.mark.parametrize("members, kwargs, message", ERRORS)
def test_errors(members, kwargs, message):
    with pytest.raises(AnsibleFilterError) as error:
        pg_replication(members, **kwargs)
    assert message in str(error.value)
