"""Galaxy as its database sees it, for the service exporter (JSON): jobs waiting and running per
destination (TPV's: gpu_docker_session, ...; "unmapped" before a handler took them), the sessions
routed now, and how long sessions took from the launch call to running (Slurm started their
container) over the last hour, as percentiles.

    gxnb-galaxy-metrics [--config /srv/galaxy/config/galaxy.yml] [--window-minutes 60]

Read-only; run as root or Galaxy's user (galaxy.yml holds the database's password: it is never
printed).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

import sqlalchemy
import yaml

SESSION_TOOLS = "interactive_tool_%"
STATES = ("new", "queued", "running")


def database_url(config_file: str) -> str:
    with open(config_file, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    return (config.get("galaxy") or {}).get("database_connection") or ""


def as_time(value: datetime.datetime | str) -> datetime.datetime:
    """A time as the driver gives it: PostgreSQL's a datetime, SQLite's the text it stored."""
    return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def collect(engine: sqlalchemy.engine.Engine, now: datetime.datetime, window_minutes: int) -> dict:
    since = now - datetime.timedelta(minutes=window_minutes)
    with engine.connect() as connection:
        jobs = connection.execute(sqlalchemy.text(
            "SELECT destination_id, state, COUNT(*) FROM job WHERE state IN :states GROUP BY destination_id, state"
        ).bindparams(sqlalchemy.bindparam("states", expanding=True)), {"states": list(STATES)}).all()  # fmt: skip
        routed = connection.execute(sqlalchemy.text(
            "SELECT COUNT(*) FROM interactivetool_entry_point WHERE configured AND NOT deleted")).scalar()  # fmt: skip
        # Galaxy's times are UTC without a zone; a job's first "running" is when its container started.
        starts = connection.execute(sqlalchemy.text(
            "SELECT job.create_time, MIN(history.create_time) FROM job JOIN job_state_history AS history"
            " ON history.job_id = job.id AND history.state = 'running'"
            " WHERE job.tool_id LIKE :tools AND job.create_time >= :since GROUP BY job.id, job.create_time"
        ), {"tools": SESSION_TOOLS, "since": since}).all()  # fmt: skip
    waits = [max(0.0, (as_time(running) - as_time(created)).total_seconds())
             for created, running in starts if running is not None]  # fmt: skip
    launches = {"count": len(waits)}
    if waits:
        launches.update(p50=percentile(waits, 0.5), p95=percentile(waits, 0.95))
    return {
        "jobs": [{"destination": destination or "unmapped", "state": state, "count": count}
                 for destination, state, count in jobs],  # fmt: skip
        "sessions_routed": int(routed or 0),
        "session_launch_window_minutes": window_minutes,
        "session_launch_seconds": launches,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gxnb-galaxy-metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="/srv/galaxy/config/galaxy.yml", help="Galaxy's galaxy.yml")
    parser.add_argument("--window-minutes", type=int, default=60, help="launch times of the sessions of this long")
    args = parser.parse_args(argv)
    try:
        url = database_url(args.config)
        if not url:
            raise ValueError(f"{args.config} names no database_connection")
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        report = collect(engine, datetime.datetime.now(datetime.UTC).replace(tzinfo=None), args.window_minutes)
    except (OSError, ImportError, ValueError, yaml.YAMLError, sqlalchemy.exc.SQLAlchemyError) as error:
        # The error's first line only: a driver's message never carries the password, but its
        # later lines may carry the statement and the connection's parameters.
        print(f"gxnb-galaxy-metrics: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
