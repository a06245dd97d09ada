"""Backups: the timer's service dumps Galaxy's database; ansible/restore_database.yml (README,
"Restore a backup") puts a dump in place of the live database, and Galaxy comes back on it with
the histories and datasets made before the dump, and without what was made after."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.support import galaxy_it, local_cluster
from tests.support.ansible_run import ansible_playbook, output

pytestmark = pytest.mark.e2e

BACKUPS = "/var/backups/gxnb-postgresql"


def restore(dump: str) -> subprocess.CompletedProcess:
    return ansible_playbook("ansible/restore_database.yml", extra_vars=[f"restore_dump={dump}"], timeout=900)


def databases() -> list[str]:
    out = local_cluster.run(local_cluster.head(), "runuser", "-u", "postgres", "--", "psql", "-XAtq", "-d", "postgres",
                            "-c", "SELECT datname FROM pg_database")  # fmt: skip
    return out.split()


def test_a_missing_dump_changes_nothing():
    result = restore(f"{BACKUPS}/no-such.dump")
    assert result.returncode != 0
    assert f"no dump {BACKUPS}/no-such.dump" in result.stdout and "nothing was changed" in result.stdout
    assert galaxy_it.admin_instance().config.get_version()["version_major"]


def test_a_restored_dump_brings_back_the_histories_and_datasets():
    tag = uuid.uuid4().hex[:8]
    user = galaxy_it.new_user()
    before = f"before the backup {tag}"
    history = user.histories.create_history(name=before)["id"]
    content = f"a dataset made before the backup {tag}\n"
    dataset = galaxy_it.paste_dataset(user, history, content, "kept.txt")

    head = local_cluster.head()
    local_cluster.run(head, "systemctl", "start", "gxnb-db-backup.service", timeout=300)
    dumps = local_cluster.run(head, "ls", BACKUPS).split()
    assert dumps and all(d.startswith("galaxy-") and d.endswith(".dump") for d in dumps), dumps
    after = f"after the backup {tag}"
    user.histories.create_history(name=after)

    result = restore("latest")
    assert result.returncode == 0, output(result)
    replaced = [name for name in databases() if name.startswith("galaxy_replaced_")]
    assert replaced, databases()
    try:
        names = [h["name"] for h in user.histories.get_histories()]
        assert before in names and after not in names, names
        text = user.datasets.download_dataset(dataset, require_ok_state=True)
        assert (text.decode() if isinstance(text, bytes) else text) == content
        # Sessions are routed again: gx-it-proxy runs on the restored map.
        assert local_cluster.run(head, "systemctl", "is-active", "gx-it-proxy").strip() == "active"
    finally:
        for name in replaced:
            local_cluster.run(head, "runuser", "-u", "postgres", "--", "dropdb", name)
