"""postgresql: the owner logs in with its password on the socket only, nothing else gets in,
dumps on a timer keep the newest N, and a dump restores into a new database with its rows."""

import pytest

PASSWORD = "molecule-only-password-1234"


def psql(host, sql, user="galaxy", password=PASSWORD, database="galaxy", os_user="galaxy"):
    """Run SQL as the OS user os_user logging in as user (password in the environment, not argv)."""
    return host.run(f"runuser -u {os_user} -- env PGPASSWORD={password} psql -XAtq -h /var/run/postgresql "
                    f"-U {user} -d {database} -c {sql!r}")


@pytest.fixture(scope="module", autouse=True)
def galaxy_os_user(host):
    host.run("id galaxy || useradd --system galaxy")


def test_postgresql_runs_and_starts_at_boot(host):
    service = host.service("postgresql@15-main")
    assert service.is_running and service.is_enabled


def test_the_owner_logs_in_with_its_password(host):
    answer = psql(host, "SELECT current_user, current_database()")
    assert answer.rc == 0, answer.stderr
    assert answer.stdout.strip() == "galaxy|galaxy"


def test_the_owner_logs_in_to_the_extra_database(host):
    answer = psql(host, "SELECT current_database(), pg_get_userbyid(datdba) FROM pg_database "
                        "WHERE datname = current_database()", database="galaxy_it_map")
    assert answer.stdout.strip() == "galaxy_it_map|galaxy", answer.stderr


def test_a_wrong_password_is_refused(host):
    answer = psql(host, "SELECT 1", password="not-the-password")
    assert answer.rc != 0
    assert 'password authentication failed for user "galaxy"' in answer.stderr


def test_no_other_database_or_superuser_login(host):
    other_db = psql(host, "SELECT 1", database="postgres")
    assert other_db.rc != 0 and "no pg_hba.conf entry" in other_db.stderr
    superuser = psql(host, "SELECT 1", user="postgres", password="")
    assert superuser.rc != 0 and "Peer authentication failed" in superuser.stderr
    is_superuser = psql(host, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                              "WHERE rolname = current_user")
    assert is_superuser.stdout.strip() == "f"


def test_local_connections_only(host):
    listening = host.check_output("ss -Hltn")
    assert ":5432" not in listening, listening
    tcp = host.run(f"env PGPASSWORD={PASSWORD} psql -XAtq -h 127.0.0.1 -U galaxy -d galaxy -c 'SELECT 1'")
    assert tcp.rc != 0 and "Connection refused" in tcp.stderr


def test_the_deploy_took_a_first_dump(host):
    """A new service has a backup from its first hour, not from its first night."""
    dumps = host.check_output("ls /var/backups/gxnb-postgresql").split()
    assert len(dumps) == 1 and dumps[0].startswith("galaxy-"), dumps


def test_backups_keep_the_newest(host):
    folder = host.file("/var/backups/gxnb-postgresql")
    assert folder.is_directory and folder.user == "postgres" and folder.mode == 0o700
    for _ in range(3):
        run = host.run("systemctl start gxnb-db-backup.service")
        assert run.rc == 0, host.run("journalctl -u gxnb-db-backup.service --no-pager | tail -20").stdout
    dumps = host.check_output("ls /var/backups/gxnb-postgresql").split()
    assert len(dumps) == 2 and all(d.startswith("galaxy-") and d.endswith(".dump") for d in dumps), dumps
    timer = host.check_output("systemctl show gxnb-db-backup.timer -p TimersCalendar -p UnitFileState")
    assert "04:00:00" in timer and "UnitFileState=enabled" in timer, timer


def test_a_dump_restores_into_a_new_database(host):
    made = psql(host, "CREATE TABLE IF NOT EXISTS history (name text); "
                      "INSERT INTO history VALUES ('before the backup')")
    assert made.rc == 0, made.stderr
    assert host.run("systemctl start gxnb-db-backup.service").rc == 0
    newest = host.check_output("ls /var/backups/gxnb-postgresql | sort | tail -1")
    host.run("runuser -u postgres -- dropdb --if-exists galaxy_restored")
    restore = host.run(f"gxnb-db-restore /var/backups/gxnb-postgresql/{newest} galaxy_restored galaxy")
    assert restore.rc == 0, restore.stderr
    rows = host.check_output("runuser -u postgres -- psql -XAtq -d galaxy_restored "
                             "-c \"SELECT name, pg_get_userbyid(relowner) FROM history, pg_class "
                             "WHERE relname = 'history'\"")
    assert rows.strip() == "before the backup|galaxy"


def test_restore_never_overwrites_a_database(host):
    newest = host.check_output("ls /var/backups/gxnb-postgresql | sort | tail -1")
    again = host.run(f"gxnb-db-restore /var/backups/gxnb-postgresql/{newest} galaxy galaxy")
    assert again.rc == 1 and "the database galaxy exists" in again.stderr
    assert psql(host, "SELECT count(*) FROM history").stdout.strip() == "1"
