"""Tests that run inside the notebook image (cpu variant here; gpu checks where a GPU is visible)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest

from tests.conftest import REPO
from tests.image.conftest import RunningNotebook, docker, run_in_image
from tests.support import jupyter_kernel

pytestmark = pytest.mark.docker

NOTEBOOKS = REPO / "container" / "notebooks"
NOTEBOOK_TIME_LIMIT_S = 240  # per notebook, on a 2-core machine without GPU
BUNDLED = sorted(
    str(p.relative_to(NOTEBOOKS)) for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in str(p)
)

# The package set the issue lists, by import name.
MODULES = [
    "jupyterlab", "jupyterlab_git", "jupyterlab_nvdashboard", "jupyter_resource_usage", "elyra", "voila",
    "bqplot", "ipywidgets", "tensorflow", "keras", "sklearn", "onnx", "onnxruntime", "tf2onnx", "skl2onnx",
    "h5py", "numpy", "pandas", "scipy", "matplotlib", "seaborn", "nibabel", "skimage", "cv2", "bioblend",
    "galaxy_ie_helpers", "pynvml", "nbclient",
]  # fmt: skip
LAB_EXTENSIONS = ["@jupyterlab/git", "jupyterlab-nvdashboard", "@jupyter-server/resource-usage",
                  "@elyra/pipeline-editor-extension", "@jupyter-widgets/jupyterlab-manager", "bqplot",
                  "gxnb-accelerator"]  # fmt: skip


def test_every_listed_package_imports(image):
    script = (
        "import importlib, json, sys\n"
        f"mods = {MODULES!r}\n"
        "bad = {}\n"
        "for m in mods:\n"
        "    try: importlib.import_module(m)\n"
        "    except Exception as e: bad[m] = repr(e)\n"
        "import keras, tensorflow as tf\n"
        "print(json.dumps({'bad': bad, 'keras': keras.__version__, 'tf': tf.__version__}))\n"
    )
    out = run_in_image(image, f"python - <<'EOF'\n{script}EOF", "-e", "TF_CPP_MIN_LOG_LEVEL=2")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["bad"] == {}, f"packages that do not import: {report['bad']}"
    assert report["keras"].startswith("3."), f"Keras 3 expected, found {report['keras']}"


def test_jupyterlab_extensions_are_enabled(image):
    out = run_in_image(image, "jupyter labextension list 2>&1; jupyter server extension list 2>&1")
    assert out.returncode == 0, out.stdout + out.stderr
    listing = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)  # colour codes
    enabled = {line.split()[0] for line in listing.splitlines() if " enabled" in line and "OK" in line}
    missing = [name for name in LAB_EXTENSIONS if name not in enabled]
    assert not missing, f"JupyterLab extensions not enabled: {missing}\n{listing}"


def test_runs_as_non_root_with_tini_and_galaxy_helpers(image):
    inspect = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert inspect["User"] not in ("", "0", "root", "0:0"), f"image runs as {inspect['User']!r}"
    assert inspect["Entrypoint"] == ["tini", "-g", "--", "gxnb-entrypoint.sh"], inspect["Entrypoint"]
    assert inspect["Healthcheck"]["Test"], "no HEALTHCHECK"
    out = docker("run", "--rm", image, "bash", "-c", "id -u; command -v get put")
    assert out.returncode == 0, out.stderr
    uid, *commands = out.stdout.split()
    assert uid != "0"
    assert [c.rsplit("/", 1)[-1] for c in commands] == ["get", "put"]


def test_jupyterlab_answers_under_arbitrary_uid_with_base_url(image):
    """As Galaxy starts it: --user UID:GID (a UID the image does not know), a port and a path prefix
    from the environment."""
    nb = RunningNotebook(image, "--user", "23456:23456", port=9123, base_url="/interactivetool/ep/abc/def/")
    try:
        page = nb.wait_ready()
        assert "JupyterLab" in page.text
        logs = nb.logs()
        assert "no GPU visible, running on CPU" in logs, logs
        assert "bundled notebooks copied" in logs, logs
        # The start folder is writable for this UID and holds the bundled notebooks.
        listing = nb.http.get(f"{nb.url}/api/contents/notebooks", timeout=10)
        assert listing.status_code == 200, listing.text
        assert "home.ipynb" in [item["name"] for item in listing.json()["content"]]
        saved = nb.http.put(f"{nb.url}/api/contents/probe.txt", timeout=10,
                             json={"type": "file", "format": "text", "content": "saved"})  # fmt: skip
        assert saved.status_code == 201, saved.text
        # Code in the session knows its user by name, though /etc/passwd has no such UID.
        kernel = nb.http.post(f"{nb.url}/api/kernels", json={"name": "python3"}, timeout=30)
        assert kernel.status_code == 201, kernel.text
        ws_url = nb.url.replace("http://", "ws://", 1) + f"/api/kernels/{kernel.json()['id']}/channels"
        who = jupyter_kernel.execute(ws_url, header={"Authorization": nb.http.headers["Authorization"]}, code=(
            "import getpass, os, pwd, subprocess\n"
            "print(getpass.getuser(), subprocess.run(['whoami'], capture_output=True, text=True).stdout.strip(),\n"
            "      pwd.getpwuid(os.getuid()).pw_dir == os.environ['HOME'])"
        ), timeout=90)  # fmt: skip
        assert who["status"] == "ok", who["error"]
        assert who["stdout"].split() == ["jovyan", "jovyan", "True"], who["stdout"]
        assert "UID 23456 is named jovyan in this container" in nb.logs()
        pid1 = nb.exec("cat", "/proc/1/cmdline").stdout.replace("\0", " ")
        assert pid1.startswith("tini"), pid1
        # Docker's own health check reaches the same server.
        deadline = time.monotonic() + 90
        status = ""
        while time.monotonic() < deadline and status != "healthy":
            status = docker("inspect", "--format", "{{.State.Health.Status}}", nb.name).stdout.strip()
            time.sleep(2)
        assert status == "healthy", f"health status {status!r}"
    finally:
        nb.remove()


def test_what_a_person_sees_first(image):
    """What a session shows first: the home notebook (not the Launcher), no prompt about Jupyter
    news, no pipeline editors for Airflow or Kubeflow and no R or Scala editors (none can run here),
    and a status bar item that says whether the session has a GPU (the browser journey reads it)."""
    nb = RunningNotebook(image, "--user", "23456:23456", port=9124, base_url="/interactivetool/ep/abc/def/")
    try:
        nb.wait_ready()
        landing = nb.http.get(f"{nb.url}/", timeout=10, allow_redirects=False)
        assert landing.status_code == 302, landing.status_code
        assert landing.headers["Location"].split("?")[0] == "/interactivetool/ep/abc/def/lab/tree/notebooks/home.ipynb"
        settings = nb.http.get(f"{nb.url}/lab/api/settings/@jupyterlab/apputils-extension:notification", timeout=10)
        assert settings.status_code == 200, settings.text
        defaults = {name: spec.get("default") for name, spec in settings.json()["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, defaults  # overrides.json
        runtimes = nb.http.get(f"{nb.url}/elyra/pipeline/runtimes/types", timeout=30)
        assert runtimes.status_code == 200, runtimes.text
        assert [t["id"] for t in runtimes.json()["runtime_types"]] == ["LOCAL"], runtimes.json()
        page_config = nb.exec("jupyter", "labextension", "list")
        listing = re.sub(r"\x1b\[[0-9;]*m", "", page_config.stdout + page_config.stderr)
        for editor in ("@elyra/r-editor-extension", "@elyra/scala-editor-extension"):
            assert re.search(rf"{re.escape(editor)} v\S+ disabled", listing), listing
        # The status bar's source: the server extension says CPU here (no GPU in this test)...
        accelerator = nb.http.get(f"{nb.url}/gxnb/accelerator", timeout=10)
        assert accelerator.status_code == 200, accelerator.text
        assert accelerator.json() == {"gpu": False, "summary": "no GPU visible, running on CPU", "devices": [],
                                      "notice": None, "usage": None}  # fmt: skip
        # ...and the lab page loads the item's script under a name that changes with its content.
        config = lab_page_config(nb)
        # Elyra's R and Scala editor plugins (ids without their package's name) are off by id
        for plugin in ("elyra-r-script-editor-extension", "elyra-scala-editor-extension"):
            assert plugin in config["disabledExtensions"], config["disabledExtensions"]
        (item,) = [e for e in config["federated_extensions"] if e["name"] == "gxnb-accelerator"]
        assert re.fullmatch(r"static/remoteEntry\.[0-9a-f]{16}\.js", item["load"]), item
        origin = nb.url.removesuffix(nb.base_url.rstrip("/"))
        script = nb.http.get(f"{origin}{config['fullLabextensionsUrl']}/gxnb-accelerator/{item['load']}", timeout=10)
        assert script.status_code == 200 and '_JUPYTERLAB[NAME]' in script.text, script.status_code
    finally:
        nb.remove()


def lab_page_config(nb: RunningNotebook) -> dict:
    """The configuration JupyterLab's page hands its frontend (extensions, disabled plugins)."""
    page = nb.http.get(f"{nb.url}/lab", timeout=10).text
    return json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1))


def test_the_ai_assistant_loads_only_when_asked_for(image):
    """Jupyter AI and the magic wand need a language model: off by default (neither the server nor
    JupyterLab loads them), on with GXNB_AI_ASSISTANT=on as the tool sets it."""
    sessions = {setting: RunningNotebook(image, "-e", f"GXNB_AI_ASSISTANT={setting}", port=9125) for setting in
                ("off", "on")}  # fmt: skip
    try:
        for setting, nb in sessions.items():
            nb.wait_ready()
            providers = nb.http.get(f"{nb.url}/api/ai/providers", timeout=30)
            disabled = lab_page_config(nb)["disabledExtensions"]
            if setting == "off":
                assert providers.status_code == 404, providers.status_code
                assert {"@jupyter-ai/core", "jupyterlab_magic_wand"} <= set(disabled), disabled
            else:
                assert providers.status_code == 200, providers.text
                assert not {"@jupyter-ai/core", "jupyterlab_magic_wand"} & set(disabled), disabled
    finally:
        for nb in sessions.values():
            nb.remove()


def test_an_ai_assistant_setting_that_is_neither_on_nor_off_is_named(image):
    out = run_in_image(image, "GXNB_AI_ASSISTANT=yes start-notebook.sh")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "GXNB_AI_ASSISTANT='yes' is neither on nor off" in out.stderr, out.stderr


def test_bundled_notebooks_match_the_repository(image):
    out = run_in_image(image, "cd /opt/gxnb/notebooks && find . -name '*.ipynb' -not -path '*/.*' | sort")
    in_image = out.stdout.split()
    in_repo = sorted(f"./{name}" for name in BUNDLED)
    assert in_repo, "no bundled notebooks in container/notebooks"
    assert in_image == in_repo


def upstream_notebooks(notebook: str) -> list[str]:
    """Notebooks that an Elyra pipeline beside `notebook` runs before it (their outputs are its inputs)."""
    folder = NOTEBOOKS / notebook
    order: list[str] = []
    for pipeline in folder.parent.glob("*.pipeline"):
        nodes = {n["id"]: n for n in json.loads(pipeline.read_text())["pipelines"][0]["nodes"]}
        by_file = {n["app_data"]["component_parameters"].get("filename"): n for n in nodes.values()}

        def visit(node, nodes=nodes):
            for port in node.get("inputs", []):
                for link in port.get("links", []):
                    upstream = nodes[link["node_id_ref"]]
                    visit(upstream)
                    name = upstream["app_data"]["component_parameters"]["filename"]
                    if name not in order:
                        order.append(name)

        if folder.name in by_file:
            visit(by_file[folder.name])
    return order


@pytest.mark.parametrize("notebook", BUNDLED)
def test_bundled_notebook_executes_headless(image, notebook):
    names = [*upstream_notebooks(notebook), notebook.rsplit("/", 1)[-1]]
    script = f"""
cp -r /opt/gxnb/notebooks /tmp/nb && cd "/tmp/nb/$(dirname '{notebook}')" && python - <<'EOF'
import time, nbformat
from nbclient import NotebookClient
for name in {names!r}:
    nb = nbformat.read(name, as_version=4)
    start = time.monotonic()
    client = NotebookClient(nb, timeout={NOTEBOOK_TIME_LIMIT_S}, kernel_name='python3',
                            resources={{'metadata': {{'path': '.'}}}})
    client.execute()
    print(f'{{name}}: executed in {{time.monotonic() - start:.1f}} s')
EOF"""
    out = run_in_image(image, script, "-e", "TF_CPP_MIN_LOG_LEVEL=2", timeout=NOTEBOOK_TIME_LIMIT_S * len(names) + 120)
    assert out.returncode == 0, f"{notebook} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    print(out.stdout.strip().splitlines()[-1])


def test_elyra_pipeline_runs_locally(image):
    pipelines = list(NOTEBOOKS.rglob("*.pipeline"))
    assert pipelines, "no Elyra pipeline bundled"
    rel = pipelines[0].relative_to(NOTEBOOKS)
    out = run_in_image(
        image,
        f"cp -r /opt/gxnb/notebooks /tmp/nb && cd '/tmp/nb/{rel.parent}' && elyra-pipeline run '{rel.name}'",
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_onnx_exports_predict_like_the_originals(image):
    out = run_in_image(image, "python /probe/onnx_parity.py", "-v", f"{REPO / 'tests/image'}:/probe:ro",
                       "-e", "TF_CPP_MIN_LOG_LEVEL=2")  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    diffs = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"ONNX vs original: {diffs}")
    assert diffs["keras_max_abs_diff"] < 1e-4
    assert diffs["sklearn_regressor_max_abs_diff"] < 1e-4
    assert diffs["sklearn_classifier_max_abs_diff"] < 1e-5
    assert diffs["sklearn_classifier_label_mismatches"] == 0


def _gpu_visible() -> bool:
    return shutil.which("nvidia-smi") is not None and docker("info", check=False).stdout.count("nvidia") > 0


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_visible(), reason="no NVIDIA GPU and runtime on this host")
def test_gpu_variant_sees_the_gpu(image):
    probe = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    out = docker("run", "--rm", "--gpus", "all", image, "python", "-c", probe, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= 1


# Imports TensorFlow as a session does; says whether gxnb.gpu_share's limit ran on the import,
# and the memory limit of each GPU TensorFlow sees (MiB; none on the cpu variant).
SHARE_PROBE = (
    "import json, tensorflow as tf\n"
    "gpus = tf.config.list_physical_devices('GPU')\n"
    "limits = [[c.memory_limit for c in tf.config.get_logical_device_configuration(g) or []] for g in gpus]\n"
    "print(json.dumps({'limited_on_import': type(tf.__spec__.loader).__name__ == '_Limiting', 'limits': limits}))\n"
)


def test_a_session_given_a_share_of_a_gpu_has_tensorflow_limited_on_import(image):
    shared = run_in_image(image, f"python - <<'EOF'\n{SHARE_PROBE}EOF", "-e", "GXNB_GPU_SHARE=1/4",
                          "-e", "TF_CPP_MIN_LOG_LEVEL=2")  # fmt: skip
    assert shared.returncode == 0, shared.stderr[-3000:]
    assert json.loads(shared.stdout.strip().splitlines()[-1]) == {"limited_on_import": True, "limits": []}
    assert "not limited" not in shared.stderr, shared.stderr[-3000:]
    whole = run_in_image(image, f"python - <<'EOF'\n{SHARE_PROBE}EOF", "-e", "TF_CPP_MIN_LOG_LEVEL=2")
    assert json.loads(whole.stdout.strip().splitlines()[-1])["limited_on_import"] is False


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_visible(), reason="no NVIDIA GPU and runtime on this host")
def test_a_quarter_of_a_real_gpu_limits_tensorflow_to_a_quarter_of_its_memory(image):
    out = docker("run", "--rm", "--gpus", "device=0", "-e", "GXNB_GPU_SHARE=1/4", image, "python", "-c",
                 SHARE_PROBE + "import pynvml; pynvml.nvmlInit()\n"
                 "print(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).total // 2**20)\n",
                 check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    *_, report, total = out.stdout.strip().splitlines()
    assert json.loads(report) == {"limited_on_import": True, "limits": [[int(total) // 4]]}, (report, total)


def exit_status_within(nb: RunningNotebook, timeout: float) -> int:
    """The container's exit status once it stops by itself (fails after timeout)."""
    try:
        return int(docker("wait", nb.name, timeout=timeout).stdout.strip())
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the session still runs after {timeout} s:\n{nb.logs()[-3000:]}") from None


def session_in(folder, image, *settings: str) -> RunningNotebook:
    """A session working in a host folder, as Galaxy runs it in the job's working folder."""
    folder.chmod(0o777)
    env = [arg for setting in settings for arg in ("-e", setting)]
    return RunningNotebook(image, "--user", "23456:100", "-v", f"{folder}:/work", "-w", "/work", *env)


def save_output(nb: RunningNotebook, name: str) -> None:
    for path, body in (("outputs", {"type": "directory"}),
                       (f"outputs/{name}", {"type": "file", "format": "text", "content": "kept"})):
        saved = nb.http.put(f"{nb.url}/api/contents/{path}", json=body, timeout=10)
        assert saved.status_code in (200, 201), saved.text


def test_an_unused_session_ends_by_itself_and_its_outputs_stay(image, tmp_path):
    """GXNB_SESSION_IDLE_TIMEOUT: the idle kernel is culled, then JupyterLab stops (it looks once a minute)."""
    nb = session_in(tmp_path, image, "GXNB_SESSION_IDLE_TIMEOUT=5")
    try:
        nb.wait_ready()
        save_output(nb, "result.txt")
        assert nb.http.post(f"{nb.url}/api/kernels", json={"name": "python3"}, timeout=30).status_code == 201
        assert exit_status_within(nb, 150) == 0
        logs = nb.logs()
        assert "the session ends after 5 s without use" in logs, logs
        assert "Culling kernel" in logs or "culling kernel" in logs.lower(), logs
        assert "shutting down" in logs, logs
        assert (tmp_path / "outputs" / "result.txt").read_text() == "kept"
    finally:
        nb.remove()


def test_a_session_in_use_stops_at_its_walltime_and_ends_well(image, tmp_path):
    nb = session_in(tmp_path, image, "GXNB_SESSION_WALLTIME=25")
    try:
        nb.wait_ready()
        save_output(nb, "model.onnx")
        kernel = nb.http.post(f"{nb.url}/api/kernels", json={"name": "python3"}, timeout=30)
        assert kernel.status_code == 201, kernel.text
        assert exit_status_within(nb, 90) == 0
        assert "the session reached its maximum time (25 s)" in nb.logs(), nb.logs()
        assert (tmp_path / "outputs" / "model.onnx").read_text() == "kept"
    finally:
        nb.remove()


def test_a_session_on_a_node_going_down_says_so_and_ends_well_at_the_time(image, tmp_path):
    """The drain playbook's notice (gxnb.node_notice) in the node's folder that job containers get
    read-only: JupyterLab's status bar says when the session ends, and it ends then as File > Shut
    Down ends it (exit 0, outputs/ kept). A notice that is not JSON changes nothing."""
    notices = tmp_path / "node"
    notices.mkdir()
    (notices / "notice.json").write_text("{half-written")
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)
    nb = RunningNotebook(image, "--user", "23456:100", "-v", f"{work}:/work", "-w", "/work",
                         "-v", f"{notices}:/run/gxnb-node:ro")  # fmt: skip
    try:
        nb.wait_ready()
        save_output(nb, "result.txt")
        assert nb.http.get(f"{nb.url}/gxnb/accelerator", timeout=10).json()["notice"] is None
        ends_at = int(time.time()) + 20
        notice = {"node": "node7", "reason": "new disk", "ends_at": ends_at}
        (notices / "notice.json.new").write_text(json.dumps(notice))
        (notices / "notice.json.new").rename(notices / "notice.json")  # as Ansible's copy writes it
        notice = nb.http.get(f"{nb.url}/gxnb/accelerator", timeout=10).json()["notice"]
        assert notice["ends_at"] == ends_at and 0 < notice["ends_in_s"] <= 20, notice
        assert "node node7 goes down for maintenance at" in notice["text"] and "(new disk)" in notice["text"]
        assert exit_status_within(nb, 90) == 0
        assert time.time() >= ends_at
        logs = nb.logs()
        assert "start-notebook: node node7 goes down for maintenance at" in logs, logs
        assert "the node goes down for maintenance: shutting JupyterLab down" in logs, logs
        assert (work / "outputs" / "result.txt").read_text() == "kept"
    finally:
        nb.remove()


def test_a_session_time_that_is_not_seconds_is_named(image):
    out = run_in_image(image, "GXNB_SESSION_WALLTIME=8h start-notebook.sh")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "GXNB_SESSION_WALLTIME='8h' is not a number of seconds (0: never)" in out.stderr, out.stderr
