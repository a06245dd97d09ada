"""galaxy on one host (SQLite): Galaxy from PyPI at the pinned version (upgraded from the one before,
its database backed up first), run by Gravity's systemd
units as the galaxy user and answering on its internal port; its configuration as the role
writes it (root-owned, readable by Galaxy only, every job through TPV, this repository's
static TPV rules after this deployment's context); after galaxy_admin keeps a key (the side
effect), galaxy.yml no longer carries the bootstrap key and the running Galaxy refuses it."""

import json
import shlex

import pytest
import yaml

CONFIG = "/srv/galaxy/config"


def api(host, path, key=""):
    header = f"-H 'x-api-key: {key}'" if key else ""
    return host.run(f"curl -s -o /dev/stderr -w '%{{http_code}}' {header} http://127.0.0.1:8081/api/{path}")


@pytest.fixture(scope="module")
def galaxy_yml(host):
    return yaml.safe_load(host.file(f"{CONFIG}/galaxy.yml").content_string)


def test_galaxy_answers_at_the_pinned_version(host):
    answer = host.run("curl -s http://127.0.0.1:8081/api/version")
    assert answer.rc == 0 and json.loads(answer.stdout)["version_major"] == "26.1", answer.stdout
    version = host.check_output("/srv/galaxy/venv/bin/python -c 'import galaxy.version as v; print(v.VERSION)'")
    assert version == "26.1.2"


def test_an_upgrade_backed_the_database_up_first_and_restarted_every_process_on_the_new_version(host):
    """converge installed 26.1.1, the side effect changed galaxy_version to 26.1.2."""
    folder = host.file("/srv/galaxy/upgrade-backups")
    assert (folder.user, folder.mode) == ("galaxy", 0o700)
    backups = host.check_output("ls /srv/galaxy/upgrade-backups").split()
    assert len(backups) == 1 and backups[0].startswith("galaxy-26.1.1-"), backups
    # A whole database: Galaxy's tables are in it.
    probe = (f"import sqlite3; print(len(sqlite3.connect('{folder.path}/{backups[0]}').execute("
             "\"select name from sqlite_master where name in ('galaxy_user', 'job', 'history')\").fetchall()))")
    assert host.check_output(f"/srv/galaxy/venv/bin/python -c {shlex.quote(probe)}") == "3"
    installed = int(host.check_output("stat -c %Y /srv/galaxy/venv/gxnb-installed-version"))
    running = "systemctl list-units 'galaxy-*' --plain --no-legend --state=running | cut -d' ' -f1"
    for unit in host.check_output(running).split():
        since = host.check_output(f"systemctl show -p ActiveEnterTimestamp --value {unit}")
        assert int(host.check_output(f"date -d '{since}' +%s")) >= installed, (unit, since)


def test_galaxy_runs_as_its_own_user_under_systemd(host):
    assert host.service("galaxy.target").is_running
    assert host.service("galaxy.target").is_enabled
    running = "systemctl list-units 'galaxy-*' --plain --no-legend --state=running | cut -d' ' -f1"
    units = host.check_output(running).split()
    assert any(unit.startswith("galaxy-gunicorn") for unit in units), units
    users = {host.check_output(f"systemctl show -p User --value {unit}") for unit in units}
    assert users == {"galaxy"}, units
    # in Galaxy's own folder, wherever Ansible ran the command that wrote the units
    folders = {host.check_output(f"systemctl show -p WorkingDirectory --value {unit}") for unit in units}
    assert folders == {"/srv/galaxy"}, folders
    assert host.user("galaxy").uid == 1450


def test_the_configuration_is_root_owned_and_readable_by_galaxy_only(host):
    config = host.file(f"{CONFIG}/galaxy.yml")
    assert (config.user, config.group, config.mode) == ("root", "galaxy", 0o640)


def test_every_job_goes_through_tpv_reading_the_context_first(host):
    job_conf = yaml.safe_load(host.file(f"{CONFIG}/job_conf.yml").content_string)
    tpv = job_conf["execution"]["environments"]["tpv_dispatcher"]["tpv_config_files"]
    assert tpv == [f"{CONFIG}/tpv/{name}" for name in ("context.yml", "defaults.yml", "destinations.yml", "tools.yml")]
    context = yaml.safe_load(host.file(f"{CONFIG}/tpv/context.yml").content_string)["global"]["context"]
    assert context["gpus_per_node"] == 0 and context["gpu_users_group"] == "gpu-users", context


def test_after_the_admins_key_is_kept_the_bootstrap_key_is_gone(host, galaxy_yml):
    assert "bootstrap_admin_api_key" not in galaxy_yml["galaxy"], galaxy_yml["galaxy"].keys()
    assert api(host, "users", "molecule-bootstrap-key-0123").stdout in ("401", "403")


def test_galaxy_starts_with_an_empty_tool_panel_until_galaxy_tools_writes_one(host, galaxy_yml):
    panel = galaxy_yml["galaxy"]["tool_config_file"]
    assert panel == f"{CONFIG}/tool_conf.xml"
    assert host.file(panel).content_string.strip().endswith('<toolbox tool_path="/srv/galaxy/tools"/>')
