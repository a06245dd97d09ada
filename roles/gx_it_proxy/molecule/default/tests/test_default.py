"""gx_it_proxy: installed from npm, runs as galaxy, reads Galaxy's interactive-tool map from
PostgreSQL (password from a pgpass file, not its arguments), routes a mapped key+token as soon
as Galaxy writes it, refuses other tokens, and forgets a route Galaxy removes."""

import time

import pytest

PASSWORD = "molecule-only-password-4321"
ROW = "('k1', 'interactivetoolentrypoint', 't1', '127.0.0.1', 9999, '{}')"


def sql(host, statement):
    """As Galaxy writes the map: the galaxy account, its password from the proxy's pgpass file."""
    return host.check_output(f"runuser -u galaxy -- env PGPASSFILE=/etc/gx-it-proxy/pgpass psql -XAtq "
                             f"-d 'postgresql://galaxy@/galaxy_it_map?host=/var/run/postgresql' -c {statement!r}")


def fetch(host, path, until=None, tries=20):
    for _ in range(tries):
        out = host.run(f"curl -s -w ' %{{http_code}}' http://127.0.0.1:4002{path}")
        if out.rc == 0 and (until is None or until(out.stdout)):
            return out.stdout
        time.sleep(0.5)
    return out.stdout


@pytest.fixture(scope="module", autouse=True)
def route(host):
    sql(host, f"DELETE FROM gxitproxy; INSERT INTO gxitproxy VALUES {ROW}")
    yield
    sql(host, "DELETE FROM gxitproxy")


def test_service_runs_as_galaxy(host):
    service = host.service("gx-it-proxy")
    assert service.is_running
    assert service.is_enabled
    user = host.check_output("ps -o user= -C node").split()
    assert user == ["galaxy"]


def test_version(host):
    assert host.check_output("/opt/gx-it-proxy/bin/gx-it-proxy --version").strip() == "0.2.3"


def test_the_password_is_in_no_process_argument_and_a_private_file(host):
    arguments = host.check_output("ps -o args= -C node")
    assert "--sessions postgresql://galaxy@/galaxy_it_map" in arguments
    assert PASSWORD not in arguments
    pgpass = host.file("/etc/gx-it-proxy/pgpass")
    assert pgpass.user == "galaxy" and pgpass.mode == 0o600


def test_route_with_key_and_token_reaches_the_tool(host):
    answer = fetch(host, "/interactivetool/ep/k1/t1/", until=lambda o: "answer" in o)
    assert answer.startswith("interactive-tool-answer")


def test_wrong_token_is_refused(host):
    out = fetch(host, "/interactivetool/ep/k1/wrong/")
    assert "interactive-tool-answer" not in out


def test_a_route_galaxy_removes_stops_routing(host):
    sql(host, "DELETE FROM gxitproxy WHERE key = 'k1'")
    gone = fetch(host, "/interactivetool/ep/k1/t1/", until=lambda o: "answer" not in o)
    assert "interactive-tool-answer" not in gone
    sql(host, f"INSERT INTO gxitproxy VALUES {ROW}")
    assert "interactive-tool-answer" in fetch(host, "/interactivetool/ep/k1/t1/", until=lambda o: "answer" in o)


def test_routes_come_back_after_a_database_restart(host):
    host.check_output("systemctl restart postgresql@15-main")
    assert "interactive-tool-answer" in fetch(host, "/interactivetool/ep/k1/t1/", until=lambda o: "answer" in o,
                                              tries=60)
    assert host.service("gx-it-proxy").is_running
