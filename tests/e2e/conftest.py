"""Every end-to-end test starts with all job nodes up: on the local cluster the second job node is
made on demand and Slurm switches it off after gxnb_node_idle_minutes idle, while tests place jobs
on given nodes (tests/e2e/test_nodes_on_demand.py tests the switching itself)."""

from __future__ import annotations

import pytest

from tests.support import local_cluster


@pytest.fixture(autouse=True)
def job_nodes_up(request):
    if request.node.get_closest_marker("e2e") and not request.node.get_closest_marker("nodes_switched_off"):
        local_cluster.all_nodes_up()
