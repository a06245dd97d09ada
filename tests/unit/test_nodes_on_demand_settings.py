"""The settings of job nodes made on demand, as site.yml's preflight checks them
(ansible/filter_plugins/gxnb_nodes_on_demand.py): tests/unit/test_preflight.py runs the play."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("gxnb_nodes_on_demand",
                                              REPO / "ansible/filter_plugins/gxnb_nodes_on_demand.py")  # fmt: skip
settings = importlib.util.module_from_spec(spec)
spec.loader.exec_module(settings)
check = settings.gxnb_nodes_on_demand_errors

LOCAL = {"socket": "/run/gxnb-local-nodes/helper.sock"}
AWS = {"region": "eu-west-1", "launch_template": "lt-0abc", "cluster_name": "gxnb", "munge_key_store": "arn:secret"}
OPENSTACK = {"cloud": "site", "image": "gxnb-node", "flavor": "g1.large", "network": "internal", "cluster_name": "gxnb",
             "munge_key_store": "gxnb-munge-key"}


def test_the_shipped_and_the_example_settings_pass():
    assert check("none", 1, 30, 300, {}, 2) == []
    assert check("local", 1, 30, 120, LOCAL, 2) == []
    assert check("aws", 0, "45", "600", AWS, 8, ["gpu-8"]) == []
    assert check("openstack", 2, 10, 300, OPENSTACK, 2, ["gpu-2"]) == []


def test_each_bad_value_is_named_with_what_is_allowed():
    assert check("azure", 1, 30, 300, {}, 2) == ["gxnb_node_driver is 'azure'; allowed: none, local, aws, openstack"]
    errors = check("local", "-1", "soon", 5, {"socket": "helper.sock"}, 2)
    assert [error.split(";")[0] for error in errors] == [
        "gxnb_nodes_min is '-1'", "gxnb_node_idle_minutes is 'soon'", "gxnb_node_resume_timeout_s is 5",
        "gxnb_node_driver_settings.socket is 'helper.sock'"]  # fmt: skip
    assert "0-2 is allowed" in errors[0]


def test_credentials_in_the_settings_are_refused_and_missing_settings_named():
    errors = check("openstack", 1, 30, 300, {**OPENSTACK, "application_credential_secret": "s3cret", "image": ""}, 2,
                   ["gpu-2"])
    assert errors[0].startswith("gxnb_node_driver_settings.application_credential_secret: credentials never go")
    assert "s3cret" not in " ".join(errors)
    assert errors[1] == ("gxnb_node_driver_settings lacks image for the openstack driver "
                         "(it needs cloud, image, flavor, network, cluster_name, munge_key_store)")  # fmt: skip
    assert check("aws", 1, 30, 300, ["region"], 2, ["gpu-2"])[0].startswith("gxnb_node_driver_settings is ['region']")


def test_nodes_a_cloud_makes_need_a_cloud_driver_and_the_reverse():
    jobs = ["gpu-1", "gpu-2"]
    assert check("aws", 1, 30, 300, AWS, 2, ["gpu-2"], jobs) == []
    [error] = check("local", 1, 30, 300, LOCAL, 2, ["gpu-2"], jobs)
    assert error == ("cloud_job_nodes lists gpu-2 (nodes a cloud makes on demand) but gxnb_node_driver is "
                     "'local'; allowed with them: aws, openstack")
    [error] = check("openstack", 1, 30, 300, OPENSTACK, 2, [], jobs)
    assert error.startswith("gxnb_node_driver is 'openstack' but the inventory's cloud_job_nodes group is empty")
    [error] = check("aws", 1, 30, 300, AWS, 2, ["gpu-9"], jobs)
    assert error.startswith("cloud_job_nodes has gpu-9, which are not in job_nodes")
