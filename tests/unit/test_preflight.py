"""Bad inventory values stop site.yml in its preflight play, before anything changes, with a
message that names the variable and what is allowed."""

from __future__ import annotations

import shutil
import socket

import pytest

from tests.conftest import REPO
from tests.support.ansible_run import PREFLIGHT_SECRETS, ansible_playbook, site_preflight


def test_good_inventory_passes_preflight_and_changes_nothing():
    result = site_preflight()
    assert result.returncode == 0, result.stdout[-3000:]
    assert "changed=0" in result.stdout
    assert "TASK [site_base : Base packages]" not in result.stdout  # only the preflight play ran


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('{"galaxy_bind_port": "eighty"}', ["galaxy_bind_port", "int"]),
        ("galaxy_database_type=mysql", ["galaxy_database_type", "sqlite", "postgresql"]),
        ("gxnb_slurm_munge_key=short", ["slurm_munge_key has 5 characters", "32 or more"]),
        ('{"gxnb_internal_address": ""}', ["gxnb_internal_address", "address the job nodes reach"]),
        ("gxnb_job_time_limit=forever", ["galaxy_job_time_limit", "forever", "hours:minutes:seconds"]),
        ('{"gxnb_gpu_quota": {"hours_per_user": 10, "users": {"*@example.org": "lots"}}}',
         ["galaxy_gpu_quota (gxnb_gpu_quota)", "not a number of hours - lots"]),
        ('{"galaxy_admin_email": ""}', ["galaxy_admin_email", "e-mail address is required"]),
        ("gxnb_public_port=99999", ["galaxy_nginx_listen_port=99999", "1-65535"]),
        ("notebook_image_variant=huge", ["notebook_image_variant", "cpu", "gpu"]),
        ("gxnb_gpu_count=two", ["gxnb_gpu_count is 'two'", "whole number of GPUs"]),
        ('{"gxnb_it_routing": "path", "gxnb_sessions_hostname": "sessions.example.net"}',
         ["gxnb_sessions_hostname is 'sessions.example.net'", "needs gxnb_it_routing: subdomain"]),
        ('{"gxnb_session_reachable_services": ["10.0.0.5"]}',
         ["docker_engine_container_allowed_services entry '10.0.0.5'", "IPv4ADDRESS:PORT"]),
        ("galaxy_sessions_url=sessions.example.net", ["galaxy_sessions_url=sessions.example.net", "scheme://host"]),
        ('{"galaxy_database_type": "postgresql", "galaxy_database_connection": ""}',
         ["galaxy_database_connection", "postgresql://"]),
        ('{"docker_engine_insecure_registries": ["http://10.0.0.5:5000/v2"]}',
         ["docker_engine_insecure_registries", "'http://10.0.0.5:5000/v2'", "host:port"]),
        ("galaxy_id_secret=" + "x" * 64, ["galaxy_id_secret", "32 to 56 characters"]),
        ("gxnb_shared_storage=nas.example.org", ["NFS mount", "nas.example.org", "server:/path"]),
        ('{"gxnb_shared_storage": "galaxy_server", "nfs_exports": [{"path": "/srv/galaxy", "clients": ["*"]}]}',
         ["NFS export", "'*' would share Galaxy's data with any host"]),
        ('{"gxnb_shared_storage": "galaxy_server", "nfs_export_default_options": "rw,no_root_squash"}',
         ["NFS export", "without no_root_squash"]),
        ('{"docker_engine_container_ingress_sources": ["galaxy.example.org"]}',
         ["docker_engine_container_ingress_sources entry 'galaxy.example.org'", "IPv4 address or CIDR"]),
        ("gxnb_tls_certificate=files",
         ["galaxy_nginx_tls_certificate=files needs", "galaxy_nginx_tls_certificate_file"]),
        ("gxnb_public_http_port=8443", ["galaxy_nginx_http_port=8443", "other than galaxy_nginx_listen_port=8443"]),
        ("gxnb_tls_certificate=acme", ["galaxy_nginx_tls_certificate", "local_ca", "files"]),
        ("gxnb_notebook_ai_assistant=maybe", ["gxnb_notebook_ai_assistant is 'maybe'", "allowed: true"]),
        ("gxnb_slurmd_port=70000", ["slurm_slurmd_port is '70000'", "port number 1-65535"]),
        ("gxnb_gpu_shards_per_gpu=half", ["gxnb_gpu_shards_per_gpu is 'half'", "whole number 0-64"]),
        ("gxnb_node_driver=gce", ["gxnb_node_driver is 'gce'", "none, local, aws, openstack"]),
        ("gxnb_nodes_min=3", ["gxnb_nodes_min is '3'", "0-2 is allowed", "2 job node(s)"]),
        ("gxnb_node_idle_minutes=0", ["gxnb_node_idle_minutes is '0'", "minutes 1-10080"]),
        ("gxnb_alert_gpu_idle_minutes=often", ["metrics_alert_gpu_idle_minutes is often", "whole number"]),
        ('{"metrics_alert_gpu_xids": ["79", "fallen off"]}',
         ["metrics_alert_gpu_xids is ['79', 'fallen off']", "a list of Xid numbers (1-9999)"]),
        ("gxnb_metrics_gpu_port=9100", ["exporter ports are ['9100', '9100', '9817']", "three different ports"]),
        ('{"gxnb_alert_receiver": {"type": "webhook", "url": "chat.example.org/hook"}}',
         ["metrics_alert_receiver is {'type': 'webhook', 'url': 'chat.example.org/hook'}", "url http(s)://"]),
        ('{"gxnb_node_driver": "aws", "gxnb_node_driver_settings": {"region": "eu-west-1", '
         '"aws_secret_access_key": "x"}}',
         ["gxnb_node_driver_settings.aws_secret_access_key: credentials never go", "instance profile",
          "lacks launch_template, cluster_name, munge_key_store"]),
        ('{"gxnb_session_ports": {"from": 80, "to": 90}}',
         ["docker_engine_published_ports is", "1024 <= N <= M <= 65535"]),
        ("galaxy_nginx_downloads_dir=srv/galaxy/data/", ["galaxy_nginx_downloads_dir='srv/galaxy/data/'", "absolute"]),
        ("gxnb_database_password=short", ["postgresql_password (gxnb_database_password)", "16 characters or more"]),
        ("gxnb_broker_password=has:a@colon-and-more", ["redis_password (gxnb_broker_password)", "letters, digits"]),
        ("gxnb_database_server=127.0.0.1:1",
         ["database server 127.0.0.1:1", "galaxy_database_connection (gxnb_database_server)", "does not answer"]),
        ("gxnb_database_backup_dir=/proc/gxnb-backups",
         ["postgresql_backup_dir=/proc/gxnb-backups (gxnb_database_backup_dir)", "/proc is not writable"]),
    ],
    ids=["port-not-integer", "unknown-database", "short-munge-key", "node-without-address", "bad-time-limit",
         "quota-not-a-number",
         "missing-admin-email", "port-out-of-range",
         "unknown-image-variant", "gpu-count-not-a-number", "sessions-host-by-path", "reachable-service-without-port",
         "sessions-url-without-scheme", "postgresql-without-url", "registry-with-scheme",
         "id-secret-too-long",
         "share-without-path", "export-to-any-host", "export-without-root-squash",
         "firewall-source-not-an-address", "tls-files-not-named", "redirect-port-is-the-https-port",
         "unknown-certificate-source", "ai-assistant-not-a-boolean", "slurmd-port-out-of-range", "shards-not-a-number",
         "unknown-node-driver", "more-nodes-on-than-exist", "no-idle-time", "alert-minutes-not-a-number",
         "xid-not-a-number",
         "two-exporters-on-one-port", "alert-webhook-without-scheme", "credentials-in-node-settings",
         "session-ports-below-1024", "downloads-folder-not-absolute",
         "short-database-password",
         "broker-password-breaks-its-url", "database-server-unreachable", "backup-folder-not-writable"],
)
def test_bad_value_fails_before_anything_changes(extra, expected):
    result = site_preflight(extra)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    for word in expected:
        assert word in out, f"{word!r} not in:\n{out[-3000:]}"
    assert "TASK [site_base : Base packages]" not in out


def test_a_local_cluster_size_that_is_not_a_number_stops_preflight(monkeypatch):
    monkeypatch.setenv("GXNB_LOCAL_GPUS_PER_NODE", "lots")  # inventory/local reads it
    result = site_preflight()
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert "gxnb-local-node1: gxnb_gpu_count is 'lots'" in out, out[-3000:]
    assert "TASK [site_base : Base packages]" not in out


GPU_INVENTORY = """
all:
  children:
    gpu_nodes:
      hosts:
        gpu-test-node: {gxnb_gpu_count: 2}
    job_nodes:
      hosts:
        gpu-test-node: {}
"""


def test_an_existing_database_server_that_answers_passes_preflight():
    """gxnb_database_server names an existing server: preflight reaches it (here: a listening socket)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        result = site_preflight(f"gxnb_database_server=127.0.0.1:{server.getsockname()[1]}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "TASK [galaxy : Reach the database server named in galaxy_database_connection]" in result.stdout


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("nvidia_driver_branch=999", ["gpu-test-node", "nvidia_driver_branch", "535", "580"]),
        ("nvidia_container_runtime_engine=containerd", ["gpu-test-node", "nvidia_container_runtime_engine",
                                                        "docker", "podman"]),
    ],
    ids=["unknown-driver-branch", "unknown-container-runtime"],
)
def test_bad_gpu_node_value_names_host_and_variable(tmp_path, extra, expected):
    inventory = tmp_path / "gpu.yml"
    inventory.write_text(GPU_INVENTORY)
    result = site_preflight(extra, inventory=inventory, secrets={})
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    for word in expected:
        assert word in out, f"{word!r} not in:\n{out[-3000:]}"


def test_production_example_inventory_resolves_site_groups():
    listed = ansible_playbook("ansible/site.yml", "--list-hosts", inventory="inventory/production", timeout=120)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "galaxy.example.org" in listed.stdout and "gpu02.example.org" in listed.stdout


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], ["gxnb_database_password", "slurm_munge_key has 0 characters"]),  # the job nodes stop too
        (["gxnb_database_password"], ["gxnb_broker_password"]),
        (["gxnb_database_password", "gxnb_broker_password"], ["galaxy_admin_password"]),
    ],
    ids=["no-secrets", "no-broker-password", "no-galaxy-secrets"],
)
def test_production_example_without_vault_secrets_stops_in_preflight(given, expected):
    """The example names its secrets but holds none: without a vault it must stop, naming the
    first one missing on each host (each given in turn, the next one is named)."""
    result = site_preflight(inventory="inventory/production", secrets={key: PREFLIGHT_SECRETS[key] for key in given})
    out = result.stdout + result.stderr
    assert result.returncode != 0
    for word in expected:
        assert word in out, f"{word!r} not in:\n{out[-3000:]}"


def test_a_node_with_another_munge_key_fails_preflight_naming_it(tmp_path):
    """munge refuses credentials between hosts with different keys: caught before any change,
    without the keys in the output."""
    inventory = tmp_path / "local"
    shutil.copytree(REPO / "inventory" / "local", inventory)
    controller_key, other_key = "the-controllers-munge-key-0123456789", "another-munge-key-0123456789abcdef"
    with (inventory / "group_vars" / "gxnb_service.yml").open("a") as group_vars:
        group_vars.write(f"\ngxnb_slurm_munge_key: {controller_key}\n")
    (inventory / "host_vars").mkdir(exist_ok=True)
    (inventory / "host_vars" / "gxnb-local-node2.yml").write_text(f"gxnb_slurm_munge_key: {other_key}\n")
    secrets = {key: value for key, value in PREFLIGHT_SECRETS.items() if key != "gxnb_slurm_munge_key"}
    result = site_preflight(inventory=inventory, secrets=secrets)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    expected = "gxnb-local-node2: slurm_munge_key differs from the one of the controller gxnb-local-head"
    assert expected in out, out[-3000:]
    assert "gxnb-local-node1: slurm_munge_key differs" not in out
    assert controller_key not in out and other_key not in out
    assert "TASK [site_base : Base packages]" not in out
