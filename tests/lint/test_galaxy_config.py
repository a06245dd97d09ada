"""Tool XMLs against Galaxy's XSD (planemo skips it for interactive tools) and TPV lint + dry-run."""

from __future__ import annotations

import contextlib
import io
import pathlib
import subprocess

import pytest
import yaml
from lxml import etree

from tests.conftest import REPO, render_template

TOOLS_DIR = REPO / "galaxy_config" / "tools"
TPV_DIR = REPO / "galaxy_config" / "tpv"
# The helper on job nodes that turns the job's GPU allocation into docker run arguments.
GPU_ARGS_HELPER = REPO / "roles" / "slurm" / "files" / "slurm-job-gpus-docker-args"
TOOL_TEMPLATES = sorted(TOOLS_DIR.rglob("*.xml.j2"))
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
SESSION_WALLTIME_SECONDS = 12 * 3600
SESSION_LIMIT_PER_USER = 2
TRAINING_LIMIT_PER_USER = 2
TRAINING_QUEUE_LIMIT_PER_USER = 5
OUTPUT_LIMIT_GB = 50
# Which destination TPV picks: sessions and trainings have their own (counted per user; a session's
# Slurm limit is its walltime and 5 minutes).
DESTINATION_OF = {"interactive_tool_ml_jupyter_notebook": "{kind}_docker_session",
                  "run_jupyter_job": "{kind}_docker_training"}


def galaxy_xsd() -> etree.XMLSchema:
    import galaxy.tool_util

    xsd = pathlib.Path(galaxy.tool_util.__file__).parent / "xsd" / "galaxy.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


@pytest.mark.parametrize("template", TOOL_TEMPLATES, ids=lambda p: p.name)
def test_tool_xml_is_valid_against_galaxys_xsd(template):
    xml = render_template(template, **TOOL_VARS)
    document = etree.fromstring(xml.encode())
    schema = galaxy_xsd()
    assert schema.validate(document), "\n".join(str(e) for e in schema.error_log)


@pytest.mark.parametrize(("routing", "requires_domain", "path_in_url"),
                         [("subdomain", "True", "False"), ("path", "False", "True")])
def test_the_entry_point_follows_the_routing_setting(routing, requires_domain, path_in_url):
    variables = {"tool": dict(TOOL_VARS["tool"], it_routing=routing)}
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **variables)
    document = etree.fromstring(xml.encode())
    assert galaxy_xsd().validate(document)
    entry_point = document.find("entry_points/entry_point")
    assert entry_point.get("requires_domain") == requires_domain
    assert entry_point.get("requires_path_in_url") == path_in_url


def test_the_session_gets_its_idle_timeout_and_walltime_from_the_settings():
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **TOOL_VARS)
    env = {e.get("name"): e.text for e in etree.fromstring(xml.encode()).iter("environment_variable")}
    assert env["GXNB_SESSION_IDLE_TIMEOUT"] == "3600" and env["GXNB_SESSION_WALLTIME"] == "43200", env


@pytest.mark.parametrize(("setting", "passed"), [(None, "off"), (False, "off"), (True, "on")])
def test_the_ai_assistant_setting_reaches_the_session(setting, passed):
    variables = {"tool": dict(TOOL_VARS["tool"], **({} if setting is None else {"ai_assistant": setting}))}
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **variables)
    env = {e.get("name"): e.text for e in etree.fromstring(xml.encode()).iter("environment_variable")}
    assert env["GXNB_AI_ASSISTANT"] == passed, env


def test_notebook_tool_keeps_galaxy_europes_id_and_image_from_the_facts():
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **TOOL_VARS)
    root = etree.fromstring(xml.encode())
    assert root.get("id") == "interactive_tool_ml_jupyter_notebook"
    assert root.get("tool_type") == "interactive"
    assert root.findtext("requirements/container").strip() == "gxnb/jupyterlab-ai:test"
    assert root.findtext("entry_points/entry_point/port").strip() == "8888"


def test_git_mode_reaches_its_command_branch():
    """The original XML's git mode never matched its command branch: every select value must."""
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **TOOL_VARS)
    root = etree.fromstring(xml.encode())
    command = root.findtext("command")
    for option in root.iter("option"):
        value = option.get("value")
        if value != "fresh":
            assert f"== '{value}'" in command, f"mode {value!r} has no branch in the command"


def render_tpv(tmp_path: pathlib.Path, gpu_count: int, gpu_role: str = "", handlers: int = 2) -> pathlib.Path:
    config_dir = tmp_path / f"gpus{gpu_count}-handlers{handlers}"
    (config_dir / "tpv").mkdir(parents=True)
    files = ["destinations.yml", "tools.yml"]
    for name in files:
        text = render_template(TPV_DIR / f"{name}.j2", galaxy_gpu_count=gpu_count, galaxy_venv_dir="/srv/galaxy/venv",
                               galaxy_job_time_limit="12:00:00", galaxy_public_url="https://galaxy.example.org",
                               galaxy_jobs_galaxy_url="http://10.0.0.2:8080",
                               galaxy_job_container_label="org.gxnb.slurm-job-id",
                               galaxy_job_gpus_docker_args_command=str(GPU_ARGS_HELPER),
                               galaxy_job_docker_command="/usr/local/bin/slurm-job-docker",
                               galaxy_job_pids_limit=4096,
                               __galaxy_session_walltime_seconds=SESSION_WALLTIME_SECONDS,
                               galaxy_job_secrets_folder="gxnb-secrets", galaxy_job_secrets_mount="/run/gxnb/secrets",
                               __galaxy_sessions_url="https://galaxy-sessions.example.net",
                               galaxy_job_output_limit_gb=OUTPUT_LIMIT_GB,
                               galaxy_training_queue_limit_per_user=TRAINING_QUEUE_LIMIT_PER_USER,
                               galaxy_gpu_role=gpu_role, galaxy_admin_email="galaxy-admins@example.org")
        (config_dir / "tpv" / name).write_text(text)
    job_conf = render_template(
        REPO / "galaxy_config" / "job_conf.yml.j2",
        galaxy_config_dir=str(config_dir),
        galaxy_tpv_files=files,
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


@pytest.mark.parametrize("gpu_count", [0, 2])
def test_tpv_lint(tmp_path, gpu_count):
    config_dir = render_tpv(tmp_path, gpu_count, gpu_role="gpu-users")
    for name in ("destinations.yml", "tools.yml"):
        code, output = tpv("lint", config_dir / "tpv" / name)
        assert code == 0, output


def test_tpv_lint_catches_a_broken_rule(tmp_path):
    """The lint step can fail: a rule that is not valid Python is reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text("tools:\n  default:\n    cores: 1\n  broken_tool:\n    cores: abc(\n")
    code, _output = tpv("lint", broken)
    assert code == 1


def dry_run(config_dir: pathlib.Path, tool_id: str, *user_args: str, expect_code: int = 0) -> str:
    code, output = tpv("dry-run", "--job-conf", config_dir / "job_conf.yml", "--tool", tool_id, *user_args)
    assert code == expect_code, output
    return output


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
    return yaml.safe_load(out[out.index("!!python/object"):].split("\n", 1)[1])["params"]


def docker_run_arguments(tmp_path: pathlib.Path, tool_id: str, gpu_count: int) -> str:
    """The docker run arguments TPV gives the tool, as one line of shell."""
    return destination_params(tmp_path, tool_id, gpu_count)["docker_run_extra_arguments"]


def expand_in_a_job(arguments: str, env: dict, path: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    """Expand the arguments as the job script on a node does (bash), printing one per line."""
    helper_dir = path or GPU_ARGS_HELPER.parent
    return subprocess.run(["bash", "-c", f"printf '%s\\n' {arguments}"], capture_output=True, text=True,
                          env={"PATH": f"{helper_dir}:/usr/bin:/bin", **env})


@pytest.mark.parametrize("tool_id", ["interactive_tool_ml_jupyter_notebook", "run_jupyter_job"])
def test_a_gpu_container_gets_exactly_the_gpus_slurm_allocated(tmp_path, tool_id):
    arguments = docker_run_arguments(tmp_path, tool_id, gpu_count=2)
    assert "all" not in arguments.replace("allocation", ""), arguments
    # A node with NVIDIA's container toolkit (Docker's --gpus runs its hook): those devices only.
    toolkit = tmp_path / "toolkit"
    toolkit.mkdir()
    for tool in ("nvidia-container-runtime-hook", GPU_ARGS_HELPER.name):
        source = GPU_ARGS_HELPER if tool == GPU_ARGS_HELPER.name else pathlib.Path("/bin/true")
        (toolkit / tool).write_bytes(source.read_bytes())
        (toolkit / tool).chmod(0o755)
    with_runtime = expand_in_a_job(arguments, {"SLURM_JOB_GPUS": "1,3", "SLURM_JOB_ID": "42"}, toolkit)
    assert with_runtime.returncode == 0, with_runtime.stderr
    lines = with_runtime.stdout.splitlines()
    assert lines[lines.index("--gpus") + 1] == '"device=1,3"', lines
    assert "org.gxnb.slurm-job-id=42" in lines and "SLURM_JOB_GPUS=1,3" in lines, lines
    # A node without it (the local cluster's fake GPUs): the allocation as environment only.
    env_only = expand_in_a_job(arguments, {"SLURM_JOB_GPUS": "1", "SLURM_JOB_ID": "43"})
    assert env_only.returncode == 0, env_only.stderr
    assert "CUDA_VISIBLE_DEVICES=1" in env_only.stdout.splitlines() and "--gpus" not in env_only.stdout
    # No allocation: the job stops with a message that says so.
    none = expand_in_a_job(arguments, {"SLURM_JOB_ID": "44"})
    assert none.returncode != 0 and "no GPU allocation from Slurm (SLURM_JOB_GPUS is empty)" in none.stderr


@pytest.mark.parametrize(("tool_id", "gpu_count"), [("interactive_tool_ml_jupyter_notebook", 0), ("run_jupyter_job", 0),
                                                  ("interactive_tool_ml_jupyter_notebook", 2), ("run_jupyter_job", 2)])
def test_user_code_runs_without_privileges_with_bounded_processes_and_the_jobs_cores(tmp_path, tool_id, gpu_count):
    expanded = expand_in_a_job(docker_run_arguments(tmp_path, tool_id, gpu_count),
                               {"SLURM_JOB_ID": "9", "SLURM_JOB_GPUS": "0"})  # fmt: skip
    assert expanded.returncode == 0, expanded.stderr
    words = expanded.stdout.splitlines()
    pairs = {(words[i], words[i + 1]) for i in range(len(words) - 1)}
    assert {("--cap-drop", "ALL"), ("--security-opt", "no-new-privileges"), ("--pids-limit", "4096"),
            ("--cpus", "2"), ("--memory", "4096m")} <= pairs, words  # tools.yml: cores 2, mem 4  # fmt: skip


def test_every_job_container_carries_its_slurm_job_id(tmp_path):
    arguments = docker_run_arguments(tmp_path, "interactive_tool_ml_jupyter_notebook", gpu_count=0)
    expanded = expand_in_a_job(arguments, {"SLURM_JOB_ID": "7"})
    assert expanded.returncode == 0 and "org.gxnb.slurm-job-id=7" in expanded.stdout.splitlines(), expanded


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
        for job, limit in (("session", SESSION_LIMIT_PER_USER), ("training", TRAINING_LIMIT_PER_USER)) for kind in kinds
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
# never the folder itself (its configs/ says where a session lives).
OWN_FOLDERS = ["$tool_directory:ro", "$job_directory/tool_script.sh:ro", "$working_directory:rw",
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
