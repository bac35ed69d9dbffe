"""What an operator checks on a host after the baseline: real state, not files. Scenario site
converges the baseline from the bare image as part of site.yml; these checks run on both of its
hosts, first (the file sorts before the other suites)."""

import os

import pytest
import testinfra

from conftest import recap_changed

testinfra_hosts = ["site-db", "site-mon"]


@pytest.fixture(scope="module")
def db():
    return testinfra.get_host("ansible://site-db", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def test_os_is_the_supported_one(host):
    assert host.system_info.distribution == "debian"
    assert host.system_info.release.startswith("12")


def test_locale_is_generated_and_usable(host):
    assert "en_US.utf8" in host.check_output("locale -a").split()
    # the collation PostgreSQL will be initialised with actually sorts
    out = host.check_output(
        "LC_ALL=en_US.UTF-8 python3 -c \"import locale; locale.setlocale(locale.LC_ALL, ''); "
        "print(sorted(['b', 'A', 'a', 'B'], key=locale.strxfrm))\""
    )
    assert out == "['a', 'A', 'b', 'B']"
    assert host.check_output(". /etc/default/locale && echo $LANG") == "en_US.UTF-8"


def test_timezone_is_applied(host):
    assert host.check_output("timedatectl show -p Timezone --value") == "Asia/Seoul"
    assert host.check_output("date +%Z") == "KST"


@pytest.mark.parametrize("pkg", ["acl", "chrony", "locales", "python3-apt", "sysstat", "jq"])
def test_base_packages_installed(host, pkg):
    assert host.package(pkg).is_installed


def test_apt_uses_only_the_managed_mirror(host):
    mirror = os.environ["ONPREM_APT_MIRROR"].rstrip("/")
    host.run_test("apt-get update -q")
    policy = host.check_output("apt-cache policy")
    sources = {line.split()[1].rstrip("/") for line in policy.splitlines() if line.strip()[:3].isdigit() and " http" in line}
    assert mirror in sources
    assert all(s in {mirror, os.environ.get("ONPREM_APT_SECURITY_MIRROR", "").rstrip("/")} for s in sources), sources
    # the host's original sources were retired, not deleted: a backup copy is kept
    assert "managed in" in host.file("/etc/apt/sources.list.d/debian.sources").content_string
    backups = host.check_output("ls /etc/apt/sources.list.d/ | grep -c '^debian.sources\\..*~$' || true")
    assert int(backups) >= 1


def test_chrony_enabled_but_not_started_in_a_container(host):
    assert host.service("chrony").is_enabled
    # a container cannot set the clock: the unit's own condition keeps it down
    assert host.run("systemctl is-active chrony").stdout.strip() in {"inactive", "activating"}


def test_kernel_settings_skipped_in_containers(host):
    # decided by facts (virtualization_type), so the VM path is not taken here
    assert not host.file("/etc/sysctl.d/60-onprem-baseline.conf").exists
    assert not host.file("/etc/systemd/system/onprem-thp.service").exists


@pytest.mark.parametrize(
    "bad, variable",
    [
        ({"baseline_timezone": "Mars/Olympus Mons"}, "baseline_timezone"),
        ({"baseline_locale": "english"}, "baseline_locale"),
        ({"baseline_apt_mirror": "ftp.example/debian"}, "baseline_apt_mirror"),
        ({"baseline_manage_kernel": "sometimes"}, "baseline_manage_kernel"),
    ],
)
def test_bad_input_fails_before_any_change(db, ansible_playbook, bad, variable):
    before = db.check_output("timedatectl show -p Timezone --value")
    run = ansible_playbook("../../playbooks/baseline.yml", bad, limit="site-db")
    assert run.returncode != 0
    assert variable in run.stdout + run.stderr
    assert recap_changed(run.stdout) == 0, run.stdout[-3000:]
    assert db.check_output("timedatectl show -p Timezone --value") == before
