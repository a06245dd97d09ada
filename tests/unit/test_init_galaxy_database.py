"""gxnb-init-galaxy-database: a new database's jobs must not reuse an earlier database's job
working folders (the files an old job left in outputs/ would go to another user's history)."""

from __future__ import annotations

import datetime
import importlib.machinery
import importlib.util

from tests.conftest import REPO

SCRIPT = REPO / "roles/galaxy/files/gxnb-init-galaxy-database"
loader = importlib.machinery.SourceFileLoader("gxnb_init_galaxy_database", str(SCRIPT))
spec = importlib.util.spec_from_loader(loader.name, loader)
init_db = importlib.util.module_from_spec(spec)
loader.exec_module(init_db)

NOW = datetime.datetime(2026, 12, 4, 19, 40, 0, tzinfo=datetime.UTC)


def test_an_earlier_databases_job_folders_are_moved_aside_with_their_files(tmp_path):
    jobs = tmp_path / "jobs_directory"
    (jobs / "000" / "1" / "outputs").mkdir(parents=True)
    (jobs / "000" / "1" / "outputs" / "someone_elses.txt").write_text("private")
    (jobs / "001" / "1042").mkdir(parents=True)
    (jobs / "_cleared_contents").mkdir()  # Galaxy's own, not a job's: stays

    aside = init_db.set_aside_old_job_folders(str(jobs), now=NOW)

    moved = jobs / "_before_database_20261204T194000Z"
    assert aside == str(moved)
    assert sorted(p.name for p in jobs.iterdir()) == [moved.name, "_cleared_contents"]
    assert (moved / "000" / "1" / "outputs" / "someone_elses.txt").read_text() == "private"
    assert (moved / "001" / "1042").is_dir()
    assert moved.stat().st_mode & 0o077 == 0  # the admin's to read


def test_nothing_moves_without_earlier_job_folders(tmp_path):
    assert init_db.set_aside_old_job_folders(str(tmp_path / "missing")) is None
    (tmp_path / "jobs_directory").mkdir()
    assert init_db.set_aside_old_job_folders(str(tmp_path / "jobs_directory")) is None
    assert list((tmp_path / "jobs_directory").iterdir()) == []
