"""The production server as the local deployment runs it: Galaxy, its interactive-tool map and
gx-it-proxy on PostgreSQL, Celery on Redis with a password, job handlers in their own processes,
gunicorn workers sized from the host; a wrong database or broker password stops a deploy before
Galaxy's settings change, and the running Galaxy keeps working."""

from __future__ import annotations

import hashlib
import subprocess
import uuid

import pytest
import yaml

from tests.conftest import REPO
from tests.support import galaxy_it, local_cluster
from tests.support.ansible_run import ansible_playbook

pytestmark = pytest.mark.e2e

GALAXY_YML = "/srv/galaxy/config/galaxy.yml"
SECRETS = REPO / ".deploy-local" / "secrets.yml"


def psql(sql: str, database: str = "galaxy") -> str:
    """SQL in Galaxy's database as PostgreSQL's superuser on the Galaxy server (peer login)."""
    return local_cluster.run(local_cluster.head(), "runuser", "-u", "postgres", "--", "psql", "-XAtq", "-d", database,
                             "-c", sql).strip()  # fmt: skip


def galaxy_config() -> dict:
    return yaml.safe_load(local_cluster.run(local_cluster.head(), "cat", GALAXY_YML))


def exists(path: str) -> bool:
    return subprocess.run(["docker", "exec", local_cluster.head(), "test", "-e", path]).returncode == 0


def test_galaxy_keeps_its_users_work_in_postgresql():
    user = galaxy_it.new_user()
    name = f"kept in PostgreSQL {uuid.uuid4().hex[:8]}"
    history = user.histories.create_history(name=name)["id"]
    galaxy_it.paste_dataset(user, history, "a line\n", "kept.txt")
    assert psql(f"SELECT count(*) FROM history WHERE name = '{name}'") == "1"
    assert psql(f"SELECT count(*) FROM history_dataset_association hda JOIN history h ON hda.history_id = h.id "
                f"WHERE h.name = '{name}' AND hda.name = 'kept.txt'") == "1"  # fmt: skip
    assert galaxy_config()["galaxy"]["database_connection"].startswith("postgresql://")
    assert not exists("/srv/galaxy/data/universe.sqlite")


def test_sessions_run_through_the_separate_job_handlers_and_the_map_in_postgresql():
    session = galaxy_it.new_users_session()
    try:
        # The job handlers (their own processes) took the session's job; uploads run in Celery.
        email = session.galaxy.users.get_current_user()["email"]
        handlers = psql(f"SELECT DISTINCT job.handler FROM job JOIN galaxy_user u ON job.user_id = u.id "
                        f"WHERE u.email = '{email}' AND job.tool_id LIKE '%jupyter%'").split()  # fmt: skip
        processes = galaxy_config()["gravity"]["handlers"]["handler"]["processes"]  # one per 2 CPUs by default
        assert processes >= 1 and len(handlers) == 1 and handlers[0] in {f"handler_{n}" for n in range(processes)}, (
            handlers
        )
        units = local_cluster.run(local_cluster.head(), "systemctl", "list-units", "--no-legend", "--plain",
                                  "--state=running", "galaxy-*")  # fmt: skip
        running = sorted(line.split()[0] for line in units.splitlines())
        # Gravity names a single handler galaxy-handler, several galaxy-handler@N
        expected = {"galaxy-handler.service"} if processes == 1 else {f"galaxy-handler@{n}.service" for n in
                                                                    range(processes)}  # fmt: skip
        assert expected <= set(running), running
        # gx-it-proxy routes the session from the map Galaxy wrote into PostgreSQL.
        key, token = session.key_and_token
        assert psql(f"SELECT token FROM gxitproxy WHERE key = '{key}'", database="galaxy_it_map") == token
        assert galaxy_it.wait_for_http_200(session.url + "api/status").status_code == 200
        proxy = local_cluster.run(local_cluster.head(), "ps", "-o", "args=", "-C", "node")
        assert "--sessions postgresql://galaxy@/galaxy_it_map?host=/var/run/postgresql" in proxy, proxy
        assert not exists("/srv/galaxy/data/interactivetools_map.sqlite")
    finally:
        session.galaxy.jobs.cancel_job(session.job_id)


def test_celery_uses_redis_which_wants_the_password():
    head = local_cluster.head()
    assert "NOAUTH" in local_cluster.run(head, "redis-cli", "GET", "anything")
    celery = galaxy_config()["galaxy"]["celery_conf"]
    assert celery["broker_url"].startswith("redis://:") and celery["broker_url"].endswith("@127.0.0.1:6379/0")
    password = yaml.safe_load(SECRETS.read_text())["gxnb_broker_password"]
    clients = local_cluster.run(head, "sh", "-c", "read -r p; REDISCLI_AUTH=$p redis-cli --no-auth-warning CLIENT LIST",
                                stdin=password + "\n")  # fmt: skip
    assert len(clients.splitlines()) >= 2, clients  # Galaxy's Celery workers (and this client)
    # Uploads run in the Celery workers: one completes through the broker.
    user = galaxy_it.new_user()
    history = user.histories.create_history(name="through celery")["id"]
    galaxy_it.paste_dataset(user, history, "via redis\n", "via-redis.txt")


def test_gunicorn_runs_one_worker_per_cpu_within_memory():
    head = local_cluster.head()
    cpus = int(local_cluster.run(head, "nproc"))
    memory_gb = int(local_cluster.run(head, "awk", "/MemTotal/ {print int($2 / 1048576)}", "/proc/meminfo"))
    expected = max(1, min(cpus, memory_gb // 4, 4))
    assert galaxy_config()["gravity"]["gunicorn"]["workers"] == expected
    processes = local_cluster.run(head, "pgrep", "-f", "gunicorn.*galaxy.webapps.galaxy.fast_factory").split()
    assert len(processes) == expected + 1, processes  # the master and its workers


def test_a_wrong_database_or_broker_password_stops_the_deploy_before_galaxy_changes():
    head = local_cluster.head()
    config_before = hashlib.sha256(local_cluster.run(head, "cat", GALAXY_YML).encode()).hexdigest()
    gunicorn_before = local_cluster.run(head, "systemctl", "show", "-p", "MainPID", "galaxy-gunicorn.service")
    wrong = "not-the-password-" + uuid.uuid4().hex[:8]
    deploy = ansible_playbook(
        "ansible/site.yml", "--tags", "galaxy", "--limit", head,
        extra_vars=[f"@{SECRETS}",
                    f"galaxy_database_connection=postgresql://galaxy:{wrong}@/galaxy?host=/var/run/postgresql",
                    f"galaxy_celery_broker_url=redis://:{wrong}@127.0.0.1:6379/0"],
        timeout=900)  # fmt: skip
    out = deploy.stdout + deploy.stderr
    assert deploy.returncode != 0, out[-3000:]
    assert "Galaxy cannot use its database or broker" in out, out[-3000:]
    assert "galaxy_database_connection (gxnb_database_*)" in out
    assert 'password authentication failed for user "galaxy"' in out
    assert "galaxy_celery_broker_url (gxnb_broker_password)" in out
    assert wrong not in out
    # Galaxy keeps its settings and its processes, and answers.
    assert hashlib.sha256(local_cluster.run(head, "cat", GALAXY_YML).encode()).hexdigest() == config_before
    assert local_cluster.run(head, "systemctl", "show", "-p", "MainPID", "galaxy-gunicorn.service") == gunicorn_before
    assert galaxy_it.admin_instance().config.get_version()["version_major"]


def test_galaxys_first_start_made_the_schema_once_and_no_process_failed_on_it():
    """The deploy creates the schema before Galaxy's processes first start: started together on an
    empty database, they would each create it, and all but one fail and restart."""
    races = local_cluster.run(local_cluster.head(), "bash", "-c",
                              "journalctl --no-pager -o cat -u 'galaxy-*' | grep -c -e UniqueViolation || true",
                              timeout=120)  # fmt: skip
    assert races.strip() == "0", f"{races.strip()} schema races in Galaxy's log (journalctl -u 'galaxy-*')"
