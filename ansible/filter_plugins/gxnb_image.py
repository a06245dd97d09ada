"""Which notebook image the tools run: decided here, once, for every play (site.yml's second
play), from the inventory's gxnb_notebook_image and the rollout state that
ansible/rollout_image.yml and rollback_image.yml keep on the first Galaxy server.

The order, first match wins:
1. No image rolled out yet (no state, or none recorded): the inventory's image.
2. The inventory still says what it said when the state was last written (or the state predates
   that record): the rolled-out image. A later site.yml keeps a rollout, or a rollback, in place.
3. The inventory now names the image the tools run: that image.
4. The inventory now pins a digest (repository@sha256:...): the pin, recorded in the state as
   an "inventory pin" (a rollback returns to the image it replaced).
5. The inventory now names another tag: the play stops, saying how to roll that tag out. A tag
   goes out by digest through the registry (tested, pre-pulled, smoke-tested), never silently.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

DIGEST_MARK = "@sha256:"


def notebook_image_decision(inventory_image: str, state: dict[str, Any] | None, state_file: str = "") -> dict:
    """{'image', 'source', 'record'}: the image the tools run, why, and whether the state records
    it; for rule 5 {'error'}: the message the play stops with."""
    if not isinstance(inventory_image, str) or not inventory_image.strip():
        raise AnsibleFilterError(f"gxnb_notebook_image is {inventory_image!r}; an image reference is required "
                                 "(repository:tag or repository@sha256:<digest>)")
    state = state or {}
    current = state.get("current") or ""
    if not current:
        return {"image": inventory_image, "source": "inventory", "record": False}
    recorded = state.get("inventory")
    if recorded is None or recorded == inventory_image:
        return {"image": current, "source": "rollout state", "record": False}
    if inventory_image == current:
        return {"image": current, "source": "inventory", "record": False}
    if DIGEST_MARK in inventory_image:
        return {"image": inventory_image, "source": "inventory pin", "record": True}
    where = f" ({state_file})" if state_file else ""
    last = (state.get("history") or [{}])[0]
    when = f" by {last.get('action')} on {last.get('at')}" if last.get("action") and last.get("at") else ""
    tag = inventory_image.rsplit("/", 1)[-1].split(":", 1)[1] if ":" in inventory_image.rsplit("/", 1)[-1] else ""
    return {"error": (
        f"gxnb_notebook_image is now '{inventory_image}' in the inventory (it was '{recorded}'), but the tools "
        f"run '{current}', recorded{when} in the rollout state{where}. A new tag is rolled out by digest: "
        f"ansible-playbook -i <inventory> ansible/rollout_image.yml -e rollout_tag={tag or '<tag>'} "
        "(it tests, pre-pulls and smoke-tests it; locally scripts/rollout-image.sh). Or pin a digest "
        "(repository@sha256:...) in the inventory, which site.yml deploys as it is; or put back "
        f"'{recorded}' to keep '{current}'. Nothing was changed."
    )}


class FilterModule:
    def filters(self):
        return {"notebook_image_decision": notebook_image_decision}
