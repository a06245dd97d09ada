"""The docker command of job scripts (roles/slurm/files/slurm-job-docker) behaves as `docker run`
does for Galaxy's job script: the tool's stdout and stderr apart, its exit status, the container
removed at the end, and every other command passed to docker unchanged. It adds what only the
node knows: the Slurm job's id as a label, and for a GPU job exactly the GPUs Slurm allocated
(checked against a stand-in docker that records what it was asked). (That it outlives an engine
restart is tested end to end: tests/e2e/test_faults.py.)"""

from __future__ import annotations

import pathlib
import subprocess
import uuid

import pytest

from tests.conftest import BASE_IMAGE, REPO

WRAPPER = str(REPO / "roles" / "slurm" / "files" / "slurm-job-docker")
GPU_ARGS_HELPER = REPO / "roles" / "slurm" / "files" / "slurm-job-gpus-docker-args"
IMAGE = BASE_IMAGE
# A docker that records the arguments of `create` (one per line) and runs nothing.
STAND_IN_DOCKER = """#!/bin/sh
case "$1" in
  create) shift; printf '%s\\n' "$@" > "$RECORD"; echo container-1 ;;
  wait) echo 0 ;;
esac
"""


def run_as_a_job(tmp_path: pathlib.Path, env: dict, toolkit: bool = False,
                 shards_per_gpu: int = 0) -> tuple[subprocess.CompletedProcess, list]:
    """slurm-job-docker run as a job script runs it on a node (the slurm role's settings file), and
    the arguments docker create got."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "docker").write_text(STAND_IN_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    if toolkit:  # NVIDIA's container toolkit on the node: Docker's --gpus runs its hook
        (bin_dir / "nvidia-container-runtime-hook").write_text("#!/bin/sh\n")
        (bin_dir / "nvidia-container-runtime-hook").chmod(0o755)
    settings = tmp_path / "slurm-job-docker.settings"
    settings.write_text(f"SLURM_JOB_CONTAINER_LABEL=org.example.job\nSLURM_JOB_GPUS_DOCKER_ARGS={GPU_ARGS_HELPER}\n"
                        f"SLURM_JOB_SHARDS_PER_GPU={shards_per_gpu}\n")
    record = tmp_path / "create.args"
    result = subprocess.run([WRAPPER, "run", "--rm", "--cpus", "2", IMAGE, "true"], capture_output=True, text=True,
                            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "RECORD": str(record),
                                 "SLURM_JOB_DOCKER_SETTINGS": str(settings), **env})  # fmt: skip
    return result, (record.read_text().splitlines() if record.exists() else [])


def test_every_job_container_carries_its_slurm_job_id(tmp_path):
    result, created = run_as_a_job(tmp_path, {"SLURM_JOB_ID": "7"})
    assert result.returncode == 0, result.stderr
    assert created == ["--label", "org.example.job=7", "--cpus", "2", IMAGE, "true"], created


def test_a_gpu_container_gets_exactly_the_gpus_slurm_allocated(tmp_path):
    gpu_job = {"SLURM_JOB_ID": "42", "GALAXY_GPU_ENABLED": "true", "SLURM_JOB_GPUS": "1,3"}
    # A node with NVIDIA's container toolkit: those devices only.
    result, created = run_as_a_job(tmp_path / "toolkit", gpu_job, toolkit=True)
    assert result.returncode == 0, result.stderr
    assert created[created.index("--gpus") + 1] == "device=1,3", created
    assert "SLURM_JOB_GPUS=1,3" in created and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in created, created
    assert "all" not in " ".join(created), created
    # A node without it (the local cluster's fake GPUs): the allocation as environment only.
    result, created = run_as_a_job(tmp_path / "plain", dict(gpu_job, SLURM_JOB_GPUS="1"))
    assert result.returncode == 0, result.stderr
    assert "CUDA_VISIBLE_DEVICES=1" in created and "--gpus" not in created, created


def test_a_job_given_shards_gets_their_gpu_and_is_told_its_share(tmp_path):
    # Slurm's environment for a job given one of the 4 shards of GPU 1 (gres/shard).
    shard_job = {"SLURM_JOB_ID": "43", "GALAXY_GPU_ENABLED": "true", "SLURM_JOB_GPUS": "1", "SLURM_SHARDS_ON_NODE": "1"}
    result, created = run_as_a_job(tmp_path / "shared", shard_job, toolkit=True, shards_per_gpu=4)
    assert result.returncode == 0, result.stderr
    assert created[created.index("--gpus") + 1] == "device=1", created
    assert "GXNB_GPU_SHARE=1/4" in created, created
    # A GPU given whole, as a GPU or as all its shards (a training where GPUs are shared): no share.
    for whole in ("", "4"):
        result, created = run_as_a_job(tmp_path / f"whole{whole}", dict(shard_job, SLURM_SHARDS_ON_NODE=whole),
                                       shards_per_gpu=4)  # fmt: skip
        assert result.returncode == 0 and not [a for a in created if a.startswith("GXNB_GPU_SHARE")], created


def test_a_gpu_job_without_an_allocation_stops_saying_so(tmp_path):
    result, created = run_as_a_job(tmp_path, {"SLURM_JOB_ID": "44", "GALAXY_GPU_ENABLED": "true"})
    assert result.returncode == 125 and created == []
    assert "this GPU job has no GPU allocation from Slurm (SLURM_JOB_GPUS is empty)" in result.stderr


def test_a_cpu_job_gets_no_gpu(tmp_path):
    cpu_job = {"SLURM_JOB_ID": "45", "GALAXY_GPU_ENABLED": "false", "SLURM_JOB_GPUS": "0"}
    result, created = run_as_a_job(tmp_path, cpu_job)
    assert result.returncode == 0, result.stderr
    assert not {"--gpus", "CUDA_VISIBLE_DEVICES=0", "SLURM_JOB_GPUS=0"} & set(created), created


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
def test_run_gives_the_tools_output_and_status_and_removes_the_container():
    name = f"gxnb-wrapper-{uuid.uuid4().hex[:8]}"
    result = subprocess.run([WRAPPER, "run", "--rm", "--name", name, "--label", "org.gxnb.test=1", IMAGE,
                             "/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stdout == "to-stdout\n" and result.stderr == "to-stderr\n"
    assert subprocess.run(["docker", "inspect", name], capture_output=True).returncode != 0


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
def test_other_commands_go_to_docker_unchanged():
    result = subprocess.run([WRAPPER, "image", "inspect", "-f", "{{.Id}}", IMAGE], capture_output=True, text=True)
    direct = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == direct.stdout


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
def test_a_container_killed_from_outside_ends_the_job():
    name = f"gxnb-wrapper-{uuid.uuid4().hex[:8]}"
    run = subprocess.Popen([WRAPPER, "run", "--rm", "--name", name, IMAGE, "sleep", "300"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for _ in range(60):
            if subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", name],
                              capture_output=True, text=True).stdout.strip() == "true":  # fmt: skip
                break
            subprocess.run(["sleep", "0.5"])
        subprocess.run(["docker", "kill", name], capture_output=True)
        assert run.wait(timeout=60) == 137
    finally:
        run.kill()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
