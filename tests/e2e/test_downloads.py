"""Downloads: Galaxy checks the user's access and names the file (X-Accel-Redirect); nginx sends
it, so gunicorn is not tied up streaming 1 GB+ files. Nobody reaches nginx's internal location
straight."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support import galaxy_it, local_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dataset() -> tuple[galaxy_it.GalaxyInstance, str, str]:
    owner = galaxy_it.new_user()
    history = owner.histories.create_history(name="downloads")["id"]
    content = f"a dataset to download {uuid.uuid4().hex}\n"
    return owner, galaxy_it.paste_dataset(owner, history, content, "download.txt"), content


def test_galaxy_names_the_file_and_nginx_sends_it(dataset):
    owner, dataset_id, content = dataset
    facts = local_cluster.facts()
    # Galaxy itself (gunicorn on the Galaxy server) answers with the file's name and no bytes...
    straight = local_cluster.run(local_cluster.head(), "curl", "-sS", "-D", "-", "-H", f"x-api-key: {owner.key}",
                                 f"http://127.0.0.1:{facts['galaxy_internal_port']}/api/datasets/{dataset_id}/display")
    headers, _, body = straight.replace("\r\n", "\n").partition("\n\n")
    named = dict(line.split(":", 1) for line in headers.splitlines()[1:] if ":" in line)
    named = {key.lower(): value.strip() for key, value in named.items()}
    assert named.get("x-accel-redirect", "").startswith(facts["downloads_location"] + "/"), headers
    assert body == "", body
    # ...and through nginx the user gets the bytes.
    url = f"{owner.base_url}/api/datasets/{dataset_id}/display"
    through_nginx = requests.get(url, headers={"x-api-key": owner.key}, timeout=30)
    assert through_nginx.status_code == 200 and through_nginx.text == content
    assert "x-accel-redirect" not in {name.lower() for name in through_nginx.headers}


def test_another_user_and_a_direct_request_get_no_bytes(dataset):
    owner, dataset_id, content = dataset
    other = galaxy_it.new_user()
    refused = requests.get(f"{owner.base_url}/api/datasets/{dataset_id}/display", headers={"x-api-key": other.key},
                           timeout=30)  # fmt: skip
    assert refused.status_code in (403, 404) and content not in refused.text, refused.status_code
    accel = local_cluster.facts()["downloads_location"]
    stored = galaxy_it.dataset_file(dataset_id)
    for path in (accel + stored, f"{accel}/etc/hostname"):
        direct = requests.get(owner.base_url + path, timeout=30)
        assert direct.status_code == 404, (path, direct.status_code)
