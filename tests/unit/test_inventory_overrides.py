"""Site settings in an inventory reach the hosts over the playbook's shared defaults."""

from __future__ import annotations

import pytest

from tests.support.ansible_run import ansible_adhoc


def value(inventory: str, host: str, variable: str) -> str:
    result = ansible_adhoc(
        host, "-m", "ansible.builtin.debug", "-a", f"msg={{{{ {variable} }}}}", "-o", inventory=inventory
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split('"msg": ', 1)[1].rsplit("}", 1)[0].strip().strip('"')


@pytest.mark.parametrize(
    ("inventory", "host", "variable", "expected"),
    [
        ("inventory/production", "galaxy.example.org", "gxnb_galaxy_url", "https://galaxy.example.org"),
        ("inventory/production", "gpu01.example.org", "gxnb_notebook_image",
         "registry.example.org/gxnb/jupyterlab-ai:gpu"),
        ("inventory/production", "gpu02.example.org", "gxnb_gpu_count", "2"),
        ("inventory/local", "gxnb-local-node1", "gxnb_galaxy_url_for_jobs", "http://172.30.0.10:8090"),
        ("inventory/local", "gxnb-local-head", "galaxy_tools_vars.galaxy_url_for_jobs", "http://172.30.0.10:8090"),
        ("inventory/local", "gxnb-local-head", "galaxy_jobs_galaxy_url", "http://172.30.0.10:8090"),
        ("inventory/local", "gxnb-local-node2", "slurm_job_container_label", "org.gxnb.slurm-job-id"),
        # TLS: production on 443 with the redirect on 80; locally 8443 / 8080 and the job nodes'
        # plain-HTTP listener on the head's cluster address
        ("inventory/production", "galaxy.example.org", "galaxy_nginx_tls", "true"),
        ("inventory/production", "galaxy.example.org", "galaxy_nginx_listen_port", "443"),
        ("inventory/production", "galaxy.example.org", "galaxy_nginx_http_port", "80"),
        ("inventory/production", "galaxy.example.org", "galaxy_nginx_cluster_listen", ""),
        ("inventory/local", "gxnb-local-head", "gxnb_galaxy_url", "https://localhost:8443"),
        ("inventory/local", "gxnb-local-head", "galaxy_nginx_http_port", "8080"),
        ("inventory/local", "gxnb-local-head", "galaxy_nginx_cluster_listen", "172.30.0.10:8090"),
    ],
)  # fmt: skip
def test_inventory_settings_win_over_the_shared_defaults(inventory, host, variable, expected):
    assert value(inventory, host, variable) == expected


def test_the_inventory_makes_the_cluster():
    """Every job node becomes a slurm.conf node line; GPU nodes get Gres=gpu:N and one gres.conf line per GPU."""
    import ast

    nodes = ast.literal_eval(value("inventory/production", "galaxy.example.org", "slurm_nodes"))
    by_name = {node["name"]: node for node in nodes}
    assert set(by_name) == {"gpu01", "gpu02"}
    assert by_name["gpu01"]["Gres"] == "gpu:4" and by_name["gpu02"]["Gres"] == "gpu:2"
    gres = ast.literal_eval(value("inventory/production", "gpu02.example.org", "slurm_gres_config"))
    assert [line["File"] for line in gres if line["NodeName"] == "gpu02"] == ["/dev/nvidia0", "/dev/nvidia1"]
    roles = value("inventory/production", "galaxy.example.org", "slurm_roles")
    assert "controller" in roles and "exec" not in roles
    assert "exec" in value("inventory/production", "gpu01.example.org", "slurm_roles")
