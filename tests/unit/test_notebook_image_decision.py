"""One notebook image reference: site.yml decides once which image the tools run, from the
inventory's gxnb_notebook_image and the rollout state (ansible/filter_plugins/gxnb_image.py).
A changed inventory value takes effect (no rollout yet, or a digest pin) or stops the play with
a message that says how to roll it out; it is never silently ignored."""

from __future__ import annotations

import json

import pytest

from tests.support.ansible_run import filter_plugin, output, site_preflight

decide = filter_plugin("gxnb_image").notebook_image_decision

TAG = "gxnb/jupyterlab-ai:cpu"
ROLLED = "registry.example.org:5000/gxnb/jupyterlab-ai@sha256:" + "a" * 64
PIN = "registry.example.org:5000/gxnb/jupyterlab-ai@sha256:" + "b" * 64
ROLLOUT = {"action": "rollout", "image": ROLLED, "at": "2026-12-01T10:00:00Z"}


def state(**extra) -> dict:
    return {"current": ROLLED, "previous": TAG, "history": [ROLLOUT], **extra}


def test_without_a_rollout_the_inventory_decides():
    assert decide(TAG, {}) == {"image": TAG, "source": "inventory", "record": False}
    assert decide("gxnb/jupyterlab-ai:1.0.2-cpu", {})["image"] == "gxnb/jupyterlab-ai:1.0.2-cpu"


def test_a_rollout_stays_while_the_inventory_says_what_it_said():
    assert decide(TAG, state(inventory=TAG)) == {"image": ROLLED, "source": "rollout state", "record": False}
    # A state written before the inventory was recorded: the rollout stays (as it always did).
    assert decide(TAG, state())["image"] == ROLLED


def test_a_pin_in_the_inventory_is_deployed_and_recorded():
    assert decide(PIN, state(inventory=TAG)) == {"image": PIN, "source": "inventory pin", "record": True}
    # Once recorded, the pin is what the inventory said: a later rollback stays in place.
    assert decide(PIN, {"current": ROLLED, "inventory": PIN}) == {"image": ROLLED, "source": "rollout state",
                                                                  "record": False}


def test_the_inventory_naming_the_running_image_is_no_change():
    assert decide(ROLLED, state(inventory=TAG)) == {"image": ROLLED, "source": "inventory", "record": False}


def test_a_new_tag_after_a_rollout_stops_with_the_way_to_roll_it_out():
    decision = decide("gxnb/jupyterlab-ai:1.0.2-cpu", state(inventory=TAG), "/var/lib/gxnb/rollout.json")
    assert set(decision) == {"error"}
    message = decision["error"]
    for words in ("'gxnb/jupyterlab-ai:1.0.2-cpu'", f"it was '{TAG}'", f"the tools run '{ROLLED}'",
                  "by rollout on 2026-12-01T10:00:00Z", "/var/lib/gxnb/rollout.json",
                  "ansible/rollout_image.yml -e rollout_tag=1.0.2-cpu", "repository@sha256:", "Nothing was changed"):
        assert words in message, (words, message)


@pytest.mark.parametrize("bad", ["", "  ", None])
def test_no_image_is_refused(bad):
    with pytest.raises(Exception, match="gxnb_notebook_image is"):
        decide(bad, {})


# The same through site.yml's preflight (every host is this machine; the state file is a temporary one).
def preflight(state_file, *extra: str):
    return site_preflight(f"gxnb_rollout_state_file={state_file}", *extra)


@pytest.fixture
def rolled_out(tmp_path):
    state_file = tmp_path / "rollout.json"
    state_file.write_text(json.dumps(state(inventory=TAG)))
    return state_file


def test_site_keeps_the_rolled_out_image_while_the_inventory_is_unchanged(rolled_out):
    result = preflight(rolled_out)
    assert result.returncode == 0, output(result)
    assert f"The tools run {ROLLED} (from the rollout state)" in result.stdout


def test_site_stops_on_a_new_tag_after_a_rollout_and_changes_nothing(rolled_out):
    before = rolled_out.read_text()
    result = preflight(rolled_out, "gxnb_notebook_image_tag=1.0.2-cpu")
    assert result.returncode != 0, output(result)
    out = result.stdout + result.stderr
    assert "gxnb-local-head: gxnb_notebook_image is now 'gxnb/jupyterlab-ai:1.0.2-cpu'" in out, out
    assert "-e rollout_tag=1.0.2-cpu" in out
    assert rolled_out.read_text() == before
    assert "TASK [site_base : Base packages]" not in out


def test_site_deploys_a_pinned_digest(rolled_out):
    result = preflight(rolled_out, f"gxnb_notebook_image={PIN}")
    assert result.returncode == 0, output(result)
    assert f"The tools run {PIN} (from the inventory pin)" in result.stdout


def test_site_deploys_a_changed_tag_when_nothing_was_rolled_out(tmp_path):
    result = preflight(tmp_path / "none.json", "gxnb_notebook_image_tag=1.0.2-cpu")
    assert result.returncode == 0, output(result)
    assert "The tools run gxnb/jupyterlab-ai:1.0.2-cpu (from the inventory)" in result.stdout
