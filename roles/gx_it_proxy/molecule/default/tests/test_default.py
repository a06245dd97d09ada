"""gx_it_proxy: installed from npm, runs as galaxy, routes a mapped key+token, refuses others."""

import time


def fetch(host, path):
    for _ in range(20):
        out = host.run(f"curl -s -w ' %{{http_code}}' http://127.0.0.1:4002{path}")
        if out.rc == 0:
            return out.stdout
        time.sleep(0.5)
    return out.stdout


def test_service_runs_as_galaxy(host):
    service = host.service("gx-it-proxy")
    assert service.is_running
    assert service.is_enabled
    user = host.check_output("ps -o user= -C node").split()
    assert user == ["galaxy"]


def test_version(host):
    assert host.check_output("/opt/gx-it-proxy/bin/gx-it-proxy --version").strip() == "0.2.3"


def test_route_with_key_and_token_reaches_the_tool(host):
    assert fetch(host, "/interactivetool/ep/k1/t1/").startswith("interactive-tool-answer")


def test_wrong_token_is_refused(host):
    out = fetch(host, "/interactivetool/ep/k1/wrong/")
    assert "interactive-tool-answer" not in out
