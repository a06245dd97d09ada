"""galaxy_nginx: TLS with a local CA, plain HTTP redirected, security headers, Galaxy and
interactive tools by wildcard subdomain (path form off), websocket headers, the job nodes'
plain-HTTP listener, downloads sent by nginx from Galaxy's data folder only, tus uploads passed
on as they arrive."""

import pytest

GALAXY = "galaxy.example.org"
SESSION = "abc123-tok456.ep.interactivetool.galaxy.example.org"
CA = "/etc/nginx/tls/gxnb-local-ca.crt"


def https(host, name, path="/", options=""):
    """curl as a client that trusts the host's CA store (where the role put the local CA)."""
    return host.run(f"curl -sS {options} --resolve {name}:8443:127.0.0.1 https://{name}:8443{path}")


def test_nginx_running_and_config_valid(host):
    assert host.service("nginx").is_running
    assert host.run("nginx -t").rc == 0


def test_the_certificate_is_the_local_cas_and_covers_galaxy_and_the_sessions(host):
    assert host.run(f"openssl verify -CAfile {CA} /etc/nginx/tls/server.crt").rc == 0
    sans = host.check_output("openssl x509 -in /etc/nginx/tls/server.crt -noout -ext subjectAltName")
    assert f"DNS:{GALAXY}" in sans and "DNS:*.ep.interactivetool.galaxy.example.org" in sans
    assert host.file("/etc/nginx/tls/server.key").mode == 0o600
    assert host.file("/etc/nginx/tls/gxnb-local-ca.key").mode == 0o600


def test_galaxy_is_served_over_verified_https(host):
    answer = https(host, GALAXY)
    assert answer.rc == 0, answer.stderr
    assert answer.stdout.strip() == "upstream=galaxy"


def test_a_client_without_the_ca_refuses_the_certificate(host):
    only_a_public_root = "--cacert /usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt --capath /nonexistent"
    answer = https(host, GALAXY, options=only_a_public_root)
    assert answer.rc == 60, (answer.rc, answer.stderr)  # curl: peer certificate cannot be authenticated


@pytest.mark.parametrize("name", [GALAXY, SESSION])
def test_plain_http_redirects_to_https(host, name):
    out = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' -H 'Host: {name}' "
                            "'http://127.0.0.1:8080/some/path?x=1'")
    assert out == f"301 https://{name}:8443/some/path?x=1", out


@pytest.mark.parametrize("name,referrer", [(GALAXY, "strict-origin-when-cross-origin"), (SESSION, "no-referrer")])
def test_security_headers(host, name, referrer):
    headers = https(host, name, options="-D - -o /dev/null").stdout.lower()
    assert "strict-transport-security: max-age=31536000" in headers
    assert "x-content-type-options: nosniff" in headers
    assert f"referrer-policy: {referrer}" in headers
    if name == GALAXY:
        assert "x-frame-options: sameorigin" in headers
    else:  # only Galaxy's page may show a session in a frame (X-Frame-Options cannot name it)
        assert f"content-security-policy: frame-ancestors https://{GALAXY}:8443" in headers, headers
        assert "x-frame-options" not in headers, headers


def test_path_form_stays_off_galaxys_origin_unless_turned_on(host):
    """Path routing is off by default: the path goes to Galaxy, never to the proxy."""
    out = https(host, GALAXY, "/interactivetool/ep/abc/def/", options="-o /dev/null -w '%{http_code}'").stdout
    assert out == "404", out  # Galaxy's stand-in has no such file
    log = host.run("journalctl -u upstream-it-proxy --no-pager | grep -c 'GET /interactivetool/ep/abc/def/'")
    assert int(log.stdout.strip() or 0) == 0
    galaxy_log = host.run("journalctl -u upstream-galaxy --no-pager | grep -c 'GET /interactivetool/ep/abc/def/'")
    assert int(galaxy_log.stdout.strip() or 0) >= 1


def test_subdomain_form_goes_to_the_proxy(host):
    assert https(host, SESSION).stdout.strip() == "upstream=it-proxy"


@pytest.mark.parametrize("name", ["abc123-tok456.other.interactivetool.galaxy.example.org",
                                  "abc123-tok456.ep.interactivetool.evil.example.com"])
def test_other_subdomains_do_not_reach_the_proxy(host, name):
    # -k: these names are not on the certificate; what matters is where nginx sends them
    assert https(host, name, options="-k").stdout.strip() == "upstream=galaxy"


def test_job_nodes_listener_serves_galaxy_only_over_plain_http(host):
    assert host.check_output("curl -s http://127.0.0.2:8090/").strip() == "upstream=galaxy"
    # a session's name on that listener still gets Galaxy: no route to sessions there
    assert host.check_output(f"curl -s -H 'Host: {SESSION}' http://127.0.0.2:8090/").strip() == "upstream=galaxy"
    # and it listens on that address only
    assert host.run("curl -s http://127.0.0.1:8090/").rc != 0


def test_websocket_upgrade_headers_are_forwarded(host):
    conf = host.file("/etc/nginx/sites-enabled/galaxy.conf").content_string
    assert conf.count("proxy_set_header Upgrade $http_upgrade;") >= 2
    assert "proxy_http_version 1.1;" in conf


@pytest.mark.parametrize("base", [f"--resolve {GALAXY}:8443:127.0.0.1 https://{GALAXY}:8443", "http://127.0.0.2:8090"])
def test_nginx_sends_the_file_galaxy_names_from_its_data_folder_only(host, base):
    def get(path):
        return host.run(f"curl -sS -w '\\n%{{http_code}}' {base}{path}").stdout.rsplit("\n", 1)

    assert get("/api/datasets/mine/display") == ["the dataset's bytes\n", "200"]
    hostname = host.file("/etc/hostname").content_string
    for name in ("climbing", "outside"):  # a path out of the folder, a file elsewhere
        body, code = get(f"/api/datasets/{name}/display")
        assert code != "200" and hostname not in body, (name, code, body)
    # Nobody reaches the internal location straight.
    for path in ("/_x_accel_redirect/srv/galaxy-data/datasets/mine.txt", "/_x_accel_redirect/etc/hostname"):
        body, code = get(path)
        assert code == "404" and "the dataset's bytes" not in body, (path, code)


def test_tus_uploads_reach_galaxy_as_they_arrive_and_other_bodies_are_buffered(host):
    """2 MB sent at 1 MB/s: on the tus location Galaxy gets the request at once; elsewhere nginx
    takes the whole body first (and Galaxy gets it about 2 s later)."""
    host.check_output("head -c 2000000 /dev/urandom > /tmp/upload.bin")

    def seconds_until_galaxy_has_the_request(path):
        out = host.check_output(
            f"start=$(date +%s.%N); curl -sS -D - -o /dev/null --limit-rate 1M --data-binary @/tmp/upload.bin "
            f"--resolve {GALAXY}:8443:127.0.0.1 https://{GALAXY}:8443{path}; echo start=$start"
        )
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        start = float(out.rsplit("start=", 1)[1])
        return float(fields["X-Headers-At"].strip()) - start

    assert seconds_until_galaxy_has_the_request("/api/upload/resumable_upload/") < 1.0
    assert seconds_until_galaxy_has_the_request("/api/tools/fetch") > 1.5
