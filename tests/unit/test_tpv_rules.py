"""What TPV decides for the service's tools (its dry-run over the rules the galaxy role renders):
destinations, who may run the GPU tools, Slurm's resources, the container's arguments and
mounts, the per-user limits."""

from __future__ import annotations

import pathlib
import shlex
import subprocess

import pytest
import yaml
from lxml import etree

from tests.conftest import render_template
from tests.support.galaxy_config import (
    DESTINATION_OF,
    SESSION_LIMIT_PER_USER,
    SESSION_WALLTIME_SECONDS,
    TOOL_VARS,
    TOOLS_DIR,
    TRAINING_LIMIT_PER_USER,
    TRAINING_QUEUE_LIMIT_PER_USER,
    dry_run,
    render_tpv,
    tpv,
)


@pytest.mark.parametrize("tool_id", ["interactive_tool_ml_jupyter_notebook", "run_jupyter_job"])
@pytest.mark.parametrize(
    ("gpu_count", "kind", "runs_on"), [(2, "gpu", "a GPU"), (0, "cpu", "this site's compute nodes")]
)
def test_only_the_gpu_users_group_runs_the_tools_and_others_are_told_whom_to_ask(tmp_path, tool_id, gpu_count, kind,
                                                                                  runs_on):  # fmt: skip
    config_dir = render_tpv(tmp_path, gpu_count=gpu_count, gpu_role="gpu-users")
    member = dry_run(config_dir, tool_id, "--user", "ada@example.org", "--roles", "gpu-users")
    assert f"id: {DESTINATION_OF[tool_id].format(kind=kind)}\n" in member, member
    for outsider in (["--user", "bob@example.org", "--roles", "other-group"], []):
        with pytest.raises(Exception, match=f"runs on {runs_on}, which only members of the Galaxy group 'gpu-users'"
                                            ".*galaxy-admins@example.org"):  # fmt: skip
            dry_run(config_dir, tool_id, *outsider)


@pytest.mark.parametrize("tool_id", ["interactive_tool_ml_jupyter_notebook", "run_jupyter_job"])
def test_gpu_tools_go_to_the_gpu_destination_where_gpus_exist(tmp_path, tool_id):
    out = dry_run(render_tpv(tmp_path, gpu_count=2), tool_id)
    assert f"id: {DESTINATION_OF[tool_id].format(kind='gpu')}\n" in out, out
    assert "runner: slurm" in out and "job_--gres: gpu:1" in out, out
    assert "galaxy_infrastructure_url: http://10.0.0.2:8080" in out, out  # the nodes' way to Galaxy


def destination_params(tmp_path: pathlib.Path, tool_id: str, gpu_count: int) -> dict:
    """The params of the destination TPV picks for the tool."""
    out = dry_run(render_tpv(tmp_path, gpu_count), tool_id)
    # The dry run prints the JobDestination as YAML under a Python tag line.
    return yaml.safe_load(out[out.index("!!python/object") :].split("\n", 1)[1])["params"]


def destination(tmp_path: pathlib.Path, tool_id: str, gpu_count: int) -> dict:
    """The destination TPV picks for the tool (the dry run prints it as YAML under a Python tag line)."""
    out = dry_run(render_tpv(tmp_path, gpu_count), tool_id)
    return yaml.safe_load(out[out.index("!!python/object") :].split("\n", 1)[1])


@pytest.mark.parametrize("tool_id", ["interactive_tool_ml_jupyter_notebook", "run_jupyter_job"])
def test_a_gpu_job_asks_slurm_for_its_gpus_and_its_node_for_exactly_those(tmp_path, tool_id):
    gpu = destination(tmp_path / "gpu", tool_id, gpu_count=2)
    assert gpu["params"]["job_--gres"] == "gpu:1", gpu["params"]
    # The node's docker command gives the container the GPUs Slurm allocated (SLURM_JOB_GPUS), never
    # all, when the job says it is a GPU job (tests/unit/test_slurm_job_docker.py).
    assert {"name": "GALAXY_GPU_ENABLED", "value": "true"} in gpu["env"], gpu["env"]
    assert gpu["params"]["docker_cmd"] == "/usr/local/bin/slurm-job-docker"
    cpu = destination(tmp_path / "cpu", tool_id, gpu_count=0)
    assert {"name": "GALAXY_GPU_ENABLED", "value": "false"} in cpu["env"], cpu["env"]


def test_where_gpus_are_shared_a_session_asks_for_one_shard_and_a_training_for_all_of_a_gpus(tmp_path):
    config_dir = render_tpv(tmp_path, gpu_count=2, shards_per_gpu=4)
    # A training takes its GPU whole as all 4 of its shards (Slurm keeps a job's shards on one GPU).
    for tool_id, gres in (("interactive_tool_ml_jupyter_notebook", "shard:1"), ("run_jupyter_job", "shard:4")):
        out = dry_run(config_dir, tool_id)
        picked = yaml.safe_load(out[out.index("!!python/object") :].split("\n", 1)[1])
        assert picked["id"] == DESTINATION_OF[tool_id].format(kind="gpu"), out
        assert picked["params"]["job_--gres"] == gres, picked["params"]
        # The node's docker command then gives the container the shard's GPU and tells it its share.
        assert {"name": "GALAXY_GPU_ENABLED", "value": "true"} in picked["env"], picked["env"]


@pytest.mark.parametrize(
    ("tool_id", "gpu_count"),
    [
        ("interactive_tool_ml_jupyter_notebook", 0),
        ("run_jupyter_job", 0),
        ("interactive_tool_ml_jupyter_notebook", 2),
        ("run_jupyter_job", 2),
    ],
)
def test_user_code_runs_without_privileges_with_bounded_processes_and_the_jobs_cores(tmp_path, tool_id, gpu_count):
    arguments = destination_params(tmp_path, tool_id, gpu_count)["docker_run_extra_arguments"]
    # Plain arguments: what only the node knows (job id, GPUs) its docker command adds, no shell here.
    assert not set("$`\\\"'") & set(arguments), arguments
    words = shlex.split(arguments)
    pairs = {(words[i], words[i + 1]) for i in range(len(words) - 1)}
    assert {("--cap-drop", "ALL"), ("--security-opt", "no-new-privileges"), ("--pids-limit", "4096"),
            ("--ulimit", "core=0"),  # no core dumps
            ("--cpus", "2"), ("--memory", "4096m")} <= pairs, words  # tools.yml: cores 2, mem 4  # fmt: skip
    assert "--init" in words


@pytest.mark.parametrize("tool_id", ["interactive_tool_ml_jupyter_notebook", "run_jupyter_job"])
def test_gpu_tools_go_to_the_cpu_destination_without_gpus(tmp_path, tool_id):
    out = dry_run(render_tpv(tmp_path, gpu_count=0), tool_id)
    assert f"id: {DESTINATION_OF[tool_id].format(kind='cpu')}\n" in out, out
    assert "--gpus" not in out and "gres" not in out


@pytest.mark.parametrize("tool_id", ["interactive_tool_ml_jupyter_notebook", "run_jupyter_job"])
def test_container_tools_are_submitted_to_slurm_with_their_cores_memory_and_time(tmp_path, tool_id):
    out = dry_run(render_tpv(tmp_path, gpu_count=0), tool_id)
    assert "runner: slurm" in out, out
    params = destination_params(tmp_path / "again", tool_id, gpu_count=0)
    assert (params["job_plugin"], params["shell_plugin"]) == ("Slurm", "LocalShell"), params
    assert str(params["job_ncpus"]) == "2", params  # tools.yml: cores 2
    assert str(params["job_--mem"]) == "4096", params  # mem 4 (GB) in MiB
    if tool_id == "run_jupyter_job":
        assert params["job_time"] in ("12:00:00", 12 * 3600), params  # the printout reads as YAML 1.1 (base 60)
    else:  # a session's Slurm limit (minutes): its maximum time and 5 minutes to shut down
        assert int(params["job_time"]) == SESSION_WALLTIME_SECONDS // 60 + 5, params
    assert "job_--no-requeue" in params, params  # a job whose node is lost fails; Galaxy cannot follow a requeue


def test_other_tools_stay_on_the_cpu_destination_on_gpu_sites(tmp_path):
    out = dry_run(render_tpv(tmp_path, gpu_count=2), "cat1")
    assert "id: cpu_docker\n" in out, out


@pytest.mark.parametrize("gpu_count", [0, 2])
def test_galaxy_counts_each_users_running_sessions_and_trainings_on_their_destinations(tmp_path, gpu_count):
    job_conf = yaml.safe_load((render_tpv(tmp_path, gpu_count) / "job_conf.yml").read_text())
    kinds = ["cpu", "gpu"] if gpu_count else ["cpu"]
    assert job_conf["limits"] == [
        {"type": "destination_user_concurrent_jobs", "id": f"{kind}_docker_{job}", "value": limit}
        for job, limit in (("session", SESSION_LIMIT_PER_USER), ("training", TRAINING_LIMIT_PER_USER))
        for kind in kinds
    ]


@pytest.mark.parametrize("handlers", [0, 2])
def test_separate_job_handlers_take_jobs_with_skip_locked(tmp_path, handlers):
    """Gravity's handler processes grab new jobs with PostgreSQL's SKIP LOCKED; without them
    (SQLite) the web process handles jobs and job_conf names no assignment."""
    job_conf = yaml.safe_load((render_tpv(tmp_path, 0, handlers=handlers) / "job_conf.yml").read_text())
    if handlers:
        assert job_conf["handling"] == {"assign": ["db-skip-locked"]}
    else:
        assert "handling" not in job_conf


def test_a_job_asking_for_more_gpus_than_a_node_has_is_refused_saying_why(tmp_path):
    """Slurm would keep such a job pending for ever: TPV refuses it with the reason."""
    from galaxy.jobs.mapper import JobMappingException

    config_dir = render_tpv(tmp_path, gpu_count=2)
    tools = config_dir / "tpv" / "tools.yml"
    tools.write_text(tools.read_text().replace("gpus: 1", "gpus: 3", 1))
    with pytest.raises(JobMappingException, match=r"asks for 3 GPU\(s\); the job nodes have at most 2 each"):
        tpv("dry-run", "--job-conf", config_dir / "job_conf.yml", "--tool", "interactive_tool_ml_jupyter_notebook")


def test_a_user_with_too_many_trainings_waiting_or_running_is_told_so_and_others_are_not(tmp_path):
    """job_conf holds a user's trainings over the running limit back; TPV refuses one more than
    the waiting-or-running limit at once, counting that user's trainings in Galaxy's database."""
    from galaxy.jobs.mapper import JobMappingException
    from tpv.commands.dryrunner import TPVDryRunner

    job_conf = str(render_tpv(tmp_path, gpu_count=2) / "job_conf.yml")
    runner = TPVDryRunner.from_params(job_conf, user_email="ada@example.org", tool_id="run_jupyter_job")
    runner.job.id = 10**6  # the job being mapped (not one of those below)
    model = runner.galaxy_app.model
    for number in range(TRAINING_QUEUE_LIMIT_PER_USER):
        job = model.Job()
        job.user_id, job.tool_id = runner.user.id, "run_jupyter_job"
        job.state = ["new", "queued", "running"][number % 3]
        model.context.add(job)
    finished = model.Job()  # an ended one counts for nothing
    finished.user_id, finished.tool_id, finished.state = runner.user.id, "run_jupyter_job", "ok"
    model.context.add(finished)
    model.context.commit()
    refusal = f"You have {TRAINING_QUEUE_LIMIT_PER_USER} trainings running or waiting"
    with pytest.raises(JobMappingException, match=refusal):
        runner.run()
    other = TPVDryRunner.from_params(job_conf, user_email="bo@example.org", tool_id="run_jupyter_job")
    # Another user (TPV's mock users take their id from a fixed name), the same database.
    other.galaxy_app, other.user.id, other.job.id = runner.galaxy_app, runner.user.id + 1, runner.job.id + 1
    assert other.run()[0].id == "gpu_docker_training"
    model.context.delete(finished)
    first = model.context.query(model.Job).filter(model.Job.state == "running").first()
    first.state = "ok"
    model.context.commit()
    assert runner.run()[0].id == "gpu_docker_training"  # one ended: room for one more


class StoredInput:
    """The parts of one of Galaxy's job input associations (and its dataset) that TPV reads to
    mount a job's inputs."""

    def __init__(self, path: str, extra_files: str | None = None, metadata_files: tuple[str, ...] = ()):
        self.dataset, self._path, self._extra, self._metadata = self, path, extra_files, metadata_files

    def get_file_name(self) -> str:
        return self._path

    def extra_files_path_exists(self) -> bool:
        return self._extra is not None

    @property
    def extra_files_path(self) -> str:
        return self._extra or self._path.replace(".dat", "_files")

    def get_metadata_file_paths_and_extensions(self) -> list[tuple[str, str]]:
        return [(path, "bai") for path in self._metadata]


@pytest.mark.parametrize("tool_id", ["interactive_tool_ml_jupyter_notebook", "run_jupyter_job"])
def test_a_job_container_mounts_its_own_input_files_read_only_and_no_other_dataset(tmp_path, tool_id):
    """Every user's datasets live in one folder: a container gets the job's folders and exactly its
    own input files (with their extra files and metadata files), never that folder."""
    from tpv.commands.dryrunner import TPVDryRunner

    runner = TPVDryRunner.from_params(str(render_tpv(tmp_path, gpu_count=0) / "job_conf.yml"), tool_id=tool_id)
    objects = "/srv/galaxy/data/objects"
    runner.job.input_datasets = [StoredInput(f"{objects}/a/dataset_a.dat"),
                                 StoredInput(f"{objects}/b/dataset_b.dat", extra_files=f"{objects}/b/dataset_b_files"),
                                 StoredInput(f"{objects}/a/dataset_a.dat")]  # fmt: skip
    runner.job.input_library_datasets = [
        StoredInput(f"{objects}/c/dataset_c.dat", metadata_files=(f"{objects}/_metadata_files/metadata_1.dat",))
    ]
    volumes = runner.run()[0].params["docker_volumes"].split(",")
    assert volumes == [*OWN_FOLDERS, f"{objects}/_metadata_files/metadata_1.dat:ro", f"{objects}/a/dataset_a.dat:ro",
                       f"{objects}/b/dataset_b.dat:ro", f"{objects}/b/dataset_b_files:ro",
                       f"{objects}/c/dataset_c.dat:ro"], volumes  # fmt: skip
    # A job without inputs (a fresh notebook) gets its own folders only.
    runner.job.input_datasets, runner.job.input_library_datasets = [], []
    assert runner.run()[0].params["docker_volumes"].split(",") == OWN_FOLDERS


# What a job's container gets of the job folder: its script, its working folder and its secrets,
# never the folder itself (its configs/ says where a session lives); and its node's notice folder.
OWN_FOLDERS = ["$tool_directory:ro", "$job_directory/tool_script.sh:ro", "$working_directory:rw",
               "/run/gxnb-node-notice:/run/gxnb-node:ro",
               "$job_directory/gxnb-secrets:/run/gxnb/secrets:ro"]  # fmt: skip


class TrainingInput:
    """An H5 dataset as the tool's command template sees it: its name and, as text, its path."""

    def __init__(self, name: str, path: str):
        self.element_identifier, self.path = name, path

    def __str__(self) -> str:
        return self.path


def test_a_dataset_name_reaches_the_training_command_as_one_harmless_argument(tmp_path):
    """Dataset names are the user's free text: one with quotes, ';' or spaces must neither run a
    command nor split into several arguments (Galaxy does not sanitize names)."""
    from galaxy.util.template import fill_template

    xml = render_template(TOOLS_DIR / "training" / "run_jupyter_job.xml.j2", **TOOL_VARS)
    command = etree.fromstring(xml.encode()).findtext("command")
    names = ["x'; touch crossed; echo '.h5", "my data (2).h5", "$(touch crossed).h5", "train.h5"]
    datasets = [TrainingInput(name, f"/data/dataset_{i}.dat") for i, name in enumerate(names)]
    rendered = fill_template(command, context={"select_file": "/data/script.txt", "ml_h5_datasets": datasets,
                                               "ml_h5_dataset_paths": ""})  # fmt: skip
    rendered = rendered.replace("\n", " ")  # as Galaxy's tool evaluator joins the command's lines
    stub = tmp_path / "bin" / "python"  # prints the runner's arguments, one per line
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    stub.chmod(0o755)
    result = subprocess.run(["bash", "-c", rendered], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": f"{stub.parent}:/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    arguments = result.stdout.splitlines()
    data = [arguments[i + 1] for i, argument in enumerate(arguments) if argument == "--data"]
    assert data == ["x___touch_crossed__echo__.h5=/data/dataset_0.dat", "my_data__2_.h5=/data/dataset_1.dat",
                    "__touch_crossed_.h5=/data/dataset_2.dat", "train.h5=/data/dataset_3.dat"], arguments  # fmt: skip
    assert not (tmp_path / "crossed").exists()
