"""galaxy_nginx: Galaxy, interactive tools by path and by wildcard subdomain, websocket headers."""

import pytest


def get(host, path, host_header):
    return host.check_output(f"curl -s -H 'Host: {host_header}' http://127.0.0.1:8080{path}")


def test_nginx_running_and_config_valid(host):
    assert host.service("nginx").is_running
    assert host.run("nginx -t").rc == 0


def test_galaxy_requests_go_to_galaxy(host):
    assert get(host, "/", "galaxy.example.org").strip() == "upstream=galaxy"


def test_path_form_stays_off_galaxys_origin_unless_turned_on(host):
    """Path routing is off by default: the path goes to Galaxy, never to the proxy."""
    out = host.run("curl -s -o /dev/null -w '%{http_code}' -H 'Host: galaxy.example.org' "
                   "http://127.0.0.1:8080/interactivetool/ep/abc/def/")
    assert out.stdout == "404", out.stdout  # Galaxy's stand-in has no such file
    log = host.run("journalctl -u upstream-it-proxy --no-pager | grep -c 'GET /interactivetool/ep/abc/def/'")
    assert int(log.stdout.strip() or 0) == 0
    galaxy_log = host.run("journalctl -u upstream-galaxy --no-pager | grep -c 'GET /interactivetool/ep/abc/def/'")
    assert int(galaxy_log.stdout.strip() or 0) >= 1


@pytest.mark.parametrize("name", ["abc123-tok456.ep.interactivetool.galaxy.example.org"])
def test_subdomain_form_goes_to_the_proxy(host, name):
    assert get(host, "/", name).strip() == "upstream=it-proxy"


@pytest.mark.parametrize("name", ["abc123-tok456.other.interactivetool.galaxy.example.org",
                                  "abc123-tok456.ep.interactivetool.evil.example.com"])
def test_other_subdomains_do_not_reach_the_proxy(host, name):
    assert get(host, "/", name).strip() == "upstream=galaxy"


def test_websocket_upgrade_headers_are_forwarded(host):
    conf = host.file("/etc/nginx/sites-enabled/galaxy.conf").content_string
    assert conf.count("proxy_set_header Upgrade $http_upgrade;") >= 2
    assert "proxy_http_version 1.1;" in conf
