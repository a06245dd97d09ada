"""TLS on the public side: Galaxy and the sessions over HTTPS with the local CA's certificate,
plain HTTP only redirects, the security headers, tus uploads over TLS. (A kernel over wss:// is
in test_notebook_route.py: the session's URL is https there.)"""

from __future__ import annotations

import sys
import uuid
from urllib.parse import urlsplit

import certifi
import pytest
import requests
from bioblend.galaxy import GalaxyInstance

from tests.conftest import REPO
from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def endpoints():
    endpoints = galaxy_it.load_endpoints()
    if not endpoints["galaxy_url"].startswith("https://"):
        pytest.skip("this deployment serves plain HTTP (gxnb_public_scheme: http)")
    return endpoints


@pytest.fixture(scope="module")
def public(endpoints):
    """(host, HTTPS port, plain-HTTP port) of the public side."""
    url = urlsplit(endpoints["galaxy_url"])
    return url.hostname, url.port or 443, int(local_cluster.facts()["public_http_port"])


def test_galaxy_answers_over_https_with_a_certificate_of_the_local_ca(endpoints):
    assert endpoints["ca_certificate"], endpoints
    answer = requests.get(f"{endpoints['galaxy_url']}/api/version", timeout=30, verify=endpoints["ca_certificate"])
    assert answer.status_code == 200 and "version_major" in answer.json()
    # a client that trusts only the public CAs refuses it: the certificate is the local CA's
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{endpoints['galaxy_url']}/api/version", timeout=30, verify=certifi.where())


@pytest.mark.parametrize("name", ["{host}", "abc123-tok456.ep.interactivetool.{host}"])
def test_plain_http_only_redirects_to_https(public, name):
    host, https_port, http_port = public
    name = name.format(host=host)
    answer = requests.get(f"http://{name}:{http_port}/api/version?probe=1", timeout=30, allow_redirects=False)
    assert answer.status_code == 301, answer.status_code
    suffix = "" if https_port == 443 else f":{https_port}"
    assert answer.headers["Location"] == f"https://{name}{suffix}/api/version?probe=1"
    assert "version_major" not in answer.text


def test_galaxy_sends_the_security_headers(endpoints):
    headers = requests.get(f"{endpoints['galaxy_url']}/api/version", timeout=30).headers
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert int(headers["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 180 * 24 * 3600
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_a_tus_upload_over_tls_arrives_whole(endpoints, tmp_path, monkeypatch):
    """The remote-training client's chunked, resumable upload, through nginx's TLS."""
    sys.path.insert(0, str(REPO / "container"))
    from gxnb import remote

    monkeypatch.setattr(remote, "UPLOAD_CHUNK_BYTES", 1024 * 1024)  # several chunks

    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    gi = GalaxyInstance(endpoints["galaxy_url"], key=key)
    history = gi.histories.create_history(name="tls upload")
    payload = tmp_path / "payload.txt"
    marker = uuid.uuid4().hex
    payload.write_text((marker + "\n") * 200_000)  # 6.6 MB: several chunks
    dataset_id = remote.upload(gi, payload, history["id"], "txt", progress=False)
    gi.datasets.wait_for_dataset(dataset_id, maxwait=180)
    dataset = gi.datasets.show_dataset(dataset_id)
    assert dataset["state"] == "ok" and dataset["file_size"] == payload.stat().st_size, dataset
    assert gi.datasets.download_dataset(dataset_id)[:33].decode() == marker + "\n"
