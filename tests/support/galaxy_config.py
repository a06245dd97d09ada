"""galaxy_config/ as the tests use it: the tool XMLs' values; the TPV rules rendered as the
galaxy role renders them (with the values below), TPV's own command run in this process, and its
dry-run's answer."""

from __future__ import annotations

import contextlib
import io
import pathlib
import sys

from tests.conftest import REPO, render_template

# The rules call the galaxy role's gxnb_accounting, which it puts in Galaxy's virtualenv.
sys.path.insert(0, str(REPO / "roles" / "galaxy" / "files"))
TOOLS_DIR = REPO / "galaxy_config" / "tools"
TOOL_VARS = {
    "tool": {
        "notebook_image": "gxnb/jupyterlab-ai:test",
        "notebook_port": 8888,
        "notebook_tool_version": "0.1.0",
        "galaxy_url_for_jobs": "http://172.18.0.1:8080",
        "it_routing": "subdomain",
        "session_idle_seconds": 3600,
        "session_walltime_seconds": 43200,
    }
}
TPV_DIR = REPO / "galaxy_config" / "tpv"
TPV_FILES = ["defaults.yml", "destinations.yml", "tools.yml"]
# The deployment's values for TPV's static rules, as the galaxy role writes them (its template).
TPV_CONTEXT_TEMPLATE = REPO / "roles" / "galaxy" / "templates" / "tpv_context.yml.j2"
SESSION_WALLTIME_SECONDS = 12 * 3600
SESSION_LIMIT_PER_USER = 2
TRAINING_LIMIT_PER_USER = 2
TRAINING_QUEUE_LIMIT_PER_USER = 5
OUTPUT_LIMIT_GB = 50
# Which destination TPV picks: sessions and trainings have their own (counted per user; a session's
# Slurm limit is its walltime and 5 minutes).
DESTINATION_OF = {
    "interactive_tool_ml_jupyter_notebook": "{kind}_docker_session",
    "run_jupyter_job": "{kind}_docker_training",
}


def render_tpv(tmp_path: pathlib.Path, gpu_count: int, gpu_role: str = "", handlers: int = 2,
               shards_per_gpu: int = 0) -> pathlib.Path:
    """A Galaxy config folder as the galaxy role writes it: tpv/context.yml from its template, the
    static rule files copied, job_conf.yml rendered."""
    config_dir = tmp_path / f"gpus{gpu_count}-shards{shards_per_gpu}-handlers{handlers}"
    (config_dir / "tpv").mkdir(parents=True)
    context = render_template(TPV_CONTEXT_TEMPLATE, ansible_managed="test", galaxy_gpu_count=gpu_count,
                              galaxy_gpu_shards_per_gpu=shards_per_gpu,
                              galaxy_gpu_role=gpu_role, galaxy_admin_email="galaxy-admins@example.org",
                              galaxy_training_queue_limit_per_user=TRAINING_QUEUE_LIMIT_PER_USER,
                              galaxy_job_time_limit="12:00:00",
                              __galaxy_session_walltime_seconds=SESSION_WALLTIME_SECONDS,
                              galaxy_job_docker_command="/usr/local/bin/slurm-job-docker",
                              galaxy_container_monitor_command="/usr/local/bin/gxnb-container-monitor",
                              galaxy_job_pids_limit=4096,
                              galaxy_jobs_galaxy_url="http://10.0.0.2:8080", galaxy_public_url="https://galaxy.example.org",
                              galaxy_venv_dir="/srv/galaxy/venv", galaxy_job_secrets_folder="gxnb-secrets",
                              galaxy_job_secrets_mount="/run/gxnb/secrets",
                              galaxy_node_notice_dir="/run/gxnb-node-notice", galaxy_node_notice_mount="/run/gxnb-node",
                              __galaxy_sessions_url="https://galaxy-sessions.example.net",
                              galaxy_job_output_limit_gb=OUTPUT_LIMIT_GB)  # fmt: skip
    (config_dir / "tpv" / "context.yml").write_text(context)
    for name in TPV_FILES:
        (config_dir / "tpv" / name).write_text((TPV_DIR / name).read_text())
    job_conf = render_template(
        REPO / "galaxy_config" / "job_conf.yml.j2",
        galaxy_config_dir=str(config_dir),
        galaxy_tpv_files=TPV_FILES,
        galaxy_gpu_count=gpu_count,
        galaxy_session_limit_per_user=SESSION_LIMIT_PER_USER,
        galaxy_training_limit_per_user=TRAINING_LIMIT_PER_USER,
        __galaxy_job_handler_processes=handlers,
        ansible_managed="test",
    )
    (config_dir / "job_conf.yml").write_text(job_conf)
    return config_dir


def tpv(*args: str) -> tuple[int, str]:
    """Run the `tpv` command in this process (it imports Galaxy: seconds per start as a subprocess)."""
    from tpv.commands import shell

    parsed = shell.create_parser().parse_args([str(a) for a in args])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = parsed.func(parsed)
    return code or 0, out.getvalue() + err.getvalue()


def dry_run(config_dir: pathlib.Path, tool_id: str, *user_args: str, expect_code: int = 0) -> str:
    code, output = tpv("dry-run", "--job-conf", config_dir / "job_conf.yml", "--tool", tool_id, *user_args)
    assert code == expect_code, output
    return output
