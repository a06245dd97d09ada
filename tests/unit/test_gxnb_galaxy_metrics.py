"""Galaxy's metrics from its database (roles/galaxy/files/gxnb_galaxy_metrics.py): jobs per
destination and state, the routed sessions, and the sessions' launch -> running percentiles over a
window, on a database with Galaxy's tables (their columns that it reads); and the password in
galaxy.yml never reaches its output."""

from __future__ import annotations

import datetime
import importlib.util
import json

import sqlalchemy

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("gxnb_galaxy_metrics", REPO / "roles/galaxy/files/gxnb_galaxy_metrics.py")
galaxy_metrics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(galaxy_metrics)

NOW = datetime.datetime(2026, 12, 8, 12, 0, 0)


def database(tmp_path) -> sqlalchemy.engine.Engine:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/galaxy.sqlite")
    with engine.begin() as db:
        db.execute(sqlalchemy.text("CREATE TABLE job (id INTEGER PRIMARY KEY, tool_id TEXT, state TEXT, "
                                   "destination_id TEXT, create_time TIMESTAMP)"))  # fmt: skip
        db.execute(sqlalchemy.text("CREATE TABLE job_state_history (id INTEGER PRIMARY KEY, job_id INTEGER, "
                                   "state TEXT, create_time TIMESTAMP)"))  # fmt: skip
        db.execute(sqlalchemy.text("CREATE TABLE interactivetool_entry_point (id INTEGER PRIMARY KEY, "
                                   "configured BOOLEAN, deleted BOOLEAN)"))  # fmt: skip
        minutes = datetime.timedelta(minutes=1)
        jobs = [  # id, tool, state, destination, created, seconds to running (None: never ran)
            (1, "interactive_tool_ml_jupyter_notebook", "running", "gpu_docker_session", NOW - 5 * minutes, 4.0),
            (2, "interactive_tool_ml_jupyter_notebook", "ok", "gpu_docker_session", NOW - 20 * minutes, 3.0),
            (3, "interactive_tool_ml_jupyter_notebook", "queued", "gpu_docker_session", NOW - 1 * minutes, None),
            (4, "interactive_tool_ml_jupyter_notebook", "ok", "gpu_docker_session", NOW - 90 * minutes, 60.0),
            (5, "run_jupyter_job", "running", "gpu_docker_training", NOW - 2 * minutes, 2.0),
            (6, "run_jupyter_job", "new", None, NOW, None),
            (7, "interactive_tool_ml_jupyter_notebook", "ok", "gpu_docker_session", NOW - 30 * minutes, 10.0),
        ]
        for job_id, tool, state, destination, created, to_running in jobs:
            db.execute(sqlalchemy.text("INSERT INTO job VALUES (:id, :tool, :state, :destination, :created)"),
                       {"id": job_id, "tool": tool, "state": state, "destination": destination, "created": created})
            db.execute(sqlalchemy.text("INSERT INTO job_state_history (job_id, state, create_time) "
                                       "VALUES (:id, 'queued', :created)"), {"id": job_id, "created": created})
            if to_running is not None:
                for again in (0, 30):  # a later "running" (resubmitted) does not count: the first does
                    db.execute(sqlalchemy.text("INSERT INTO job_state_history (job_id, state, create_time) "
                                               "VALUES (:id, 'running', :at)"),
                               {"id": job_id, "at": created + datetime.timedelta(seconds=to_running + again)})
        db.execute(sqlalchemy.text("INSERT INTO interactivetool_entry_point (configured, deleted) "
                                   "VALUES (1, 0), (1, 1), (0, 0)"))  # fmt: skip
    return engine


def test_jobs_per_destination_routed_sessions_and_launch_percentiles_of_the_window(tmp_path):
    report = galaxy_metrics.collect(database(tmp_path), NOW, window_minutes=60)
    jobs = {(j["destination"], j["state"]): j["count"] for j in report["jobs"]}
    assert jobs == {("gpu_docker_session", "running"): 1, ("gpu_docker_session", "queued"): 1,
                    ("gpu_docker_training", "running"): 1, ("unmapped", "new"): 1}  # fmt: skip
    assert report["sessions_routed"] == 1
    # Sessions 1, 2 and 7 ran within the hour (4, 3 and 10 s); 3 never ran, 4 is older, 5 is a training.
    assert report["session_launch_seconds"] == {"count": 3, "p50": 4.0, "p95": 10.0}


def test_the_command_prints_json_and_never_the_password_of_a_database_it_cannot_reach(tmp_path, capsys):
    engine = database(tmp_path)
    config = tmp_path / "galaxy.yml"
    config.write_text(f"galaxy:\n  database_connection: {engine.url}\n")
    assert galaxy_metrics.main(["--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["sessions_routed"] == 1
    config.write_text("galaxy:\n  database_connection: postgresql://galaxy:s3cret-pw@127.0.0.1:1/galaxy\n")
    assert galaxy_metrics.main(["--config", str(config)]) == 1
    out = capsys.readouterr()
    # (OperationalError where the driver is there, ModuleNotFoundError where it is not, as here.)
    assert out.err.startswith("gxnb-galaxy-metrics: ") and "s3cret-pw" not in out.out + out.err, out
