"""The local cluster as Slurm sees it: two job nodes with two (fake) GPUs each, each GPU also
offered as shards (gxnb_gpu_shards_per_gpu); GPU trainings get one GPU each, never the same one
twice, and a job beyond the GPUs waits for one to free up; shard jobs share GPUs, and no job gets
a GPU whole while its shards are in use. They need the cluster free of sessions."""

from __future__ import annotations

import time

import pytest
import requests
from bioblend.galaxy import GalaxyInstance

from tests.support import galaxy_it, local_cluster
from tests.support.galaxy_it import HOLDING_SCRIPT, TRAINING_TOOL_ID

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def user():
    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    return GalaxyInstance(endpoints["galaxy_url"], key=key), GalaxyInstance(endpoints["galaxy_url"],
                                                                            key=endpoints["admin_api_key"])


def node_lines() -> dict[str, tuple[str, str]]:
    """sinfo per node: name -> (state, generic resources)."""
    out = local_cluster.slurm("sinfo", "-h", "-N", "-o", "%N %T %G")
    return {name: (state, gres) for name, state, gres in (line.split() for line in out.splitlines())}


def test_sinfo_shows_both_job_nodes_idle_with_two_gpus():
    # The tests before may have just ended a session: its node is "completing" for a moment.
    deadline = time.monotonic() + 90
    nodes = node_lines()
    while any(state != "idle" for state, _ in nodes.values()) and time.monotonic() < deadline:
        time.sleep(2)
        nodes = node_lines()
    assert sorted(nodes) == local_cluster.job_nodes(), nodes
    shards = int(local_cluster.facts()["gpu_shards_per_gpu"])
    for name, (state, gres) in nodes.items():
        assert state == "idle", (name, state)
        gpus = local_cluster.containers()[name]["gpus"]
        expected = f"gpu:{gpus},shard:{gpus * shards}" if shards else f"gpu:{gpus}"
        assert gres.split("(")[0] == expected and gpus == 2, (name, gres)


def test_four_gpu_trainings_get_four_distinct_gpus_and_a_fifth_waits(user):
    gi, admin = user
    history = gi.histories.create_history(name="four GPUs")
    # Slurm names a pending job's reason on its next scheduling pass (at most a minute:
    # sched_interval), so the longest hold leaves time for that; the test releases them sooner.
    release_at = int(time.time()) + 240
    script = galaxy_it.paste_dataset(gi, history["id"], HOLDING_SCRIPT.format(release_at=release_at), "hold.py")
    jobs = [gi.tools.run_tool(history["id"], TRAINING_TOOL_ID, {"select_file": {"src": "hda", "id": script}})
            ["jobs"][0]["id"] for _ in range(5)]  # fmt: skip
    try:
        four_run_on_distinct_gpus_and_the_fifth_waits(gi, admin, jobs, release_at)
    finally:  # whatever failed, the trainings give the nodes back to the next tests
        for job in jobs:
            if gi.jobs.show_job(job)["state"] not in galaxy_it.TERMINAL_JOB_STATES:
                gi.jobs.cancel_job(job)


def four_run_on_distinct_gpus_and_the_fifth_waits(gi, admin, jobs: list[str], release_at: int) -> None:
    """Four trainings run on four distinct (node, GPU) pairs, the fifth waits for one; released, all end well."""
    # Galaxy's external id of each job is its Slurm job id; four run, the fifth waits for a GPU.
    deadline, queue = time.monotonic() + 200, ""
    while time.time() < release_at - 15 and time.monotonic() < deadline:
        external = {job: admin.jobs.show_job(job, full_details=True).get("external_id") for job in jobs}
        if all(external.values()):
            queue = local_cluster.slurm("squeue", "-h", "-j", ",".join(external.values()), "-o", "%i %T %r")
            states = {i: (state, reason) for i, state, reason in (line.split(None, 2) for line in queue.splitlines())}
            running = [i for i, (state, _) in states.items() if state == "RUNNING"]
            pending = [i for i, (state, _) in states.items() if state == "PENDING"]
            if len(running) == 4 and len(pending) == 1 and states[pending[0]][1] != "None":
                break
        time.sleep(2)
    else:
        pytest.fail(f"never 4 running + 1 pending (with a reason) before the release: {external}, squeue: {queue!r}")
    assert states[pending[0]][1] == "Resources", states
    assert all(i.isdigit() for i in external.values()), external

    gpus = {i: local_cluster.allocated_gpu(i) for i in running}
    assert len(set(gpus.values())) == 4, gpus  # four distinct (node, GPU index) pairs
    assert {node for node, _ in gpus.values()} == set(local_cluster.job_nodes()), gpus

    # Each container was given its own index only (these nodes have no NVIDIA runtime: the
    # allocation arrives as the environment).
    seen = {}
    while len(seen) < 4 and time.time() < release_at - 5:
        for node in local_cluster.job_nodes():
            for container, slurm_id in local_cluster.job_containers(node).items():
                if slurm_id in gpus and slurm_id not in seen:
                    env = local_cluster.run(node, "docker", "exec", container, "printenv", "CUDA_VISIBLE_DEVICES",
                                            check=False).strip()  # fmt: skip
                    if env:
                        seen[slurm_id] = (node, env)
        time.sleep(1)
    assert seen == gpus, (seen, gpus)

    # Released, the four end and the fifth runs on a freed GPU (and is released in turn).
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline and not all(
            gi.jobs.show_job(job)["state"] in galaxy_it.TERMINAL_JOB_STATES for job in jobs):  # fmt: skip
        for node in local_cluster.job_nodes():
            for container in local_cluster.job_containers(node):
                local_cluster.run(node, "docker", "exec", container, "touch", "/tmp/release", check=False)
        time.sleep(2)
    for job in jobs:
        assert gi.jobs.show_job(job)["state"] == "ok", admin.jobs.show_job(job, full_details=True)


def gpu_job(gres: str) -> str:
    """A Slurm job holding GRES (and a core) until cancelled, writing the GPU it was given where
    gpu_of finds it; its id."""
    return local_cluster.slurm("sbatch", "--parsable", f"--gres={gres}", "--cpus-per-task=1", "--mem=64",
                               "-o", "/dev/null", "--wrap",
                               'echo "$CUDA_VISIBLE_DEVICES" > /tmp/gxnb-gpu-of-$SLURM_JOB_ID; sleep 900').strip()


def gpu_of(job: str) -> tuple[str, str]:
    """(node, GPU index) a running job was given, as its environment says."""
    node = local_cluster.slurm("squeue", "-h", "-j", job, "-o", "%N").strip()
    deadline = time.monotonic() + 30
    while not (index := local_cluster.run(node, "cat", f"/tmp/gxnb-gpu-of-{job}", check=False).strip()):
        assert time.monotonic() < deadline, f"job {job} on {node} wrote no GPU index"
        time.sleep(1)
    return node, index


def states_of(jobs: list[str]) -> dict[str, str]:
    out = local_cluster.slurm("squeue", "-h", "-j", ",".join(jobs), "-o", "%i %T")
    return dict(line.split() for line in out.splitlines())


def test_every_gpu_runs_its_shards_at_once_and_a_whole_gpu_waits_until_one_has_none_in_use():
    """2 nodes x 2 GPUs x 4 shards: 16 shard jobs run at once, four on each GPU; a whole-GPU job then
    waits while every GPU has a shard in use, and gets the GPU whose shards all end."""
    shards = int(local_cluster.facts()["gpu_shards_per_gpu"])
    if not shards:
        pytest.skip("this deployment gives GPUs whole only (gxnb_gpu_shards_per_gpu: 0)")
    gpus = sum(c["gpus"] for c in local_cluster.containers().values() if c["kind"] == "node")
    jobs = [gpu_job("shard:1") for _ in range(gpus * shards)]
    whole = ""
    try:
        deadline = time.monotonic() + 120
        while set(states_of(jobs).values()) != {"RUNNING"} or len(states_of(jobs)) != len(jobs):
            assert time.monotonic() < deadline, f"not all {len(jobs)} shard jobs run at once: {states_of(jobs)}"
            time.sleep(2)
        on = {job: gpu_of(job) for job in jobs}  # each job one GPU index
        per_gpu = {gpu: [job for job in jobs if on[job] == gpu] for gpu in set(on.values())}
        assert len(per_gpu) == gpus and {len(held) for held in per_gpu.values()} == {shards}, per_gpu
        # One shard of each GPU ends (a core frees up on each node): every GPU still has shards in use.
        local_cluster.slurm("scancel", *[held[0] for held in per_gpu.values()])
        whole = gpu_job(f"shard:{shards}")  # a GPU whole, as trainings ask for it where GPUs are shared
        time.sleep(20)  # a few scheduling passes
        state = states_of([whole]).get(whole)
        assert state == "PENDING", (f"the whole-GPU job is {state} while every GPU has shards in use: "
                                    f"{local_cluster.slurm('scontrol', 'show', 'job', '-d', whole)}")
        # The other shards of one GPU end: the whole-GPU job gets that GPU (backfill: within a minute).
        freed_gpu, held = next(iter(per_gpu.items()))
        local_cluster.slurm("scancel", *held[1:])
        deadline = time.monotonic() + 90
        while states_of([whole]).get(whole) != "RUNNING":
            assert time.monotonic() < deadline, f"the whole-GPU job never got the freed GPU {freed_gpu}"
            time.sleep(2)
        assert gpu_of(whole) == freed_gpu
    finally:
        local_cluster.slurm("scancel", *jobs, *([whole] if whole else []))
        for node in local_cluster.job_nodes():
            local_cluster.run(node, "sh", "-c", "rm -f /tmp/gxnb-gpu-of-*", check=False)


def test_a_training_never_lands_on_a_gpu_a_notebook_is_using(user):
    """Where GPUs are shared, a session holds a shard of one GPU: of four trainings (one GPU each),
    three run on the other GPUs and the fourth waits."""
    if not int(local_cluster.facts()["gpu_shards_per_gpu"]):
        pytest.skip("this deployment gives GPUs whole only (gxnb_gpu_shards_per_gpu: 0)")
    gi, admin = user
    session = galaxy_it.start_session(galaxy_it.load_endpoints(), gi.key)
    history = gi.histories.create_history(name="beside a session")
    script = galaxy_it.paste_dataset(gi, history["id"], HOLDING_SCRIPT.format(release_at=int(time.time()) + 300),
                                     "hold.py")  # fmt: skip
    jobs = [gi.tools.run_tool(history["id"], TRAINING_TOOL_ID, {"select_file": {"src": "hda", "id": script}})
            ["jobs"][0]["id"] for _ in range(4)]  # fmt: skip
    try:
        session_gpu = local_cluster.allocated_gpu(admin.jobs.show_job(session.job_id, full_details=True)["external_id"])
        deadline, states = time.monotonic() + 240, {}
        while time.monotonic() < deadline:
            external = [admin.jobs.show_job(job, full_details=True).get("external_id") for job in jobs]
            if all(external):
                states = states_of(external)
                if sorted(states.values()) == ["PENDING", "RUNNING", "RUNNING", "RUNNING"]:
                    break
            time.sleep(2)
        else:
            pytest.fail(f"never 3 trainings running and 1 waiting beside a session: {states}")
        time.sleep(10)  # the waiting one stays waiting
        assert sorted(states_of(list(states)).values()) == ["PENDING", "RUNNING", "RUNNING", "RUNNING"]
        gpus = {local_cluster.allocated_gpu(job) for job, state in states.items() if state == "RUNNING"}
        assert len(gpus) == 3 and session_gpu not in gpus, (session_gpu, gpus)
    finally:
        for job in [*jobs, session.job_id]:
            gi.jobs.cancel_job(job)


def test_stopping_a_session_leaves_no_container_on_its_node(user):
    """Stopping a notebook in Galaxy cancels its Slurm job; the node's epilog removes the container
    (Docker runs it outside the job's cgroup: Galaxy issue 13511)."""
    gi, admin = user
    endpoints = galaxy_it.load_endpoints()
    session = galaxy_it.start_session(endpoints, gi.key)
    slurm_id = admin.jobs.show_job(session.job_id, full_details=True)["external_id"]
    node = local_cluster.node_of(admin, session.job_id)
    assert slurm_id in local_cluster.job_containers(node).values(), (node, slurm_id)
    # Its port is published from the range the node's firewall opens (gxnb_session_ports).
    container = next(name for name, job in local_cluster.job_containers(node).items() if job == slurm_id)
    published = int(local_cluster.run(node, "docker", "port", container).split(":")[-1].split()[0])
    low, high = map(int, local_cluster.facts()["session_ports"].split("-"))
    assert low <= published <= high, (container, published, local_cluster.facts()["session_ports"])
    gi.jobs.cancel_job(session.job_id)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if slurm_id not in local_cluster.job_containers(node).values() and not running(slurm_id):
            break
        time.sleep(2)
    else:
        pytest.fail(f"job {slurm_id} on {node}: containers {local_cluster.job_containers(node)}, "
                    f"squeue {running(slurm_id)!r}")
    assert requests.get(session.url + "lab", timeout=30).status_code != 200


def running(slurm_id: str) -> str:
    """The job's line in squeue while it is pending or running ('' once it has ended)."""
    return local_cluster.run(local_cluster.head(), "squeue", "-h", "-j", slurm_id, check=False).strip()


def test_a_session_and_a_training_survive_a_galaxy_restart(user):
    """Slurm, not Galaxy, runs the jobs: after a restart the session answers at the same URL, what
    it leaves in outputs/ returns to the history, and the training completes."""
    gi, admin = user
    endpoints = galaxy_it.load_endpoints()
    session = galaxy_it.start_session(endpoints, gi.key)
    release_at = int(time.time()) + 120
    script = galaxy_it.paste_dataset(gi, session.history_id, HOLDING_SCRIPT.format(release_at=release_at), "hold.py")
    training = gi.tools.run_tool(session.history_id, TRAINING_TOOL_ID,
                                 {"select_file": {"src": "hda", "id": script}})["jobs"][0]["id"]  # fmt: skip
    deadline = time.monotonic() + 90
    while gi.jobs.show_job(training)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(2)
    assert gi.jobs.show_job(training)["state"] == "running"

    local_cluster.restart_galaxy()

    assert "JupyterLab" in galaxy_it.wait_for_http_200(session.url + "lab", timeout=30).text
    marker = f"after restart {time.time()}"
    saved = session.api("PUT", "api/contents/outputs/after_restart.txt",
                        json={"type": "file", "format": "text", "content": marker})  # fmt: skip
    assert saved.status_code in (200, 201), saved.text
    assert session.api("POST", "api/shutdown").status_code in (200, 204)
    assert galaxy_it.wait_for_job(gi, session.job_id, timeout=180) == "ok"
    assert galaxy_it.wait_for_job(gi, training, timeout=300) == "ok", admin.jobs.show_job(training, full_details=True)
    assert marker in galaxy_it.wait_for_dataset_text(gi, session.history_id, "after_restart")


def test_a_container_a_job_leaves_running_is_removed_when_the_job_ends():
    """The case of Galaxy issue 13511: a job that starts a container and ends without stopping it
    (here detached, as any crash of the job script leaves it). The node's epilog removes it."""
    facts = local_cluster.facts()
    node = local_cluster.job_nodes()[0]
    image = galaxy_it.load_endpoints()["notebook_image"]
    submit = (f"cd /tmp && sbatch --parsable -w {node} -o /dev/null --wrap='docker run -d "
              f"--label {facts['job_container_label']}=$SLURM_JOB_ID {image} sleep 600'")
    slurm_id = local_cluster.run(local_cluster.head(), "su", "galaxy", "-s", "/bin/bash", "-c", submit).strip()
    deadline = time.monotonic() + 60
    left = local_cluster.job_containers
    while time.monotonic() < deadline and (running(slurm_id) or slurm_id in left(node).values()):
        time.sleep(1)
    assert not running(slurm_id)
    assert slurm_id not in local_cluster.job_containers(node).values()
    log = local_cluster.run(node, "journalctl", "-t", "slurm-epilog", "--no-pager")
    assert f"job {slurm_id}: removed its containers" in log, log[-1000:]


def failure_text(gi: GalaxyInstance, admin: GalaxyInstance, job_id: str) -> str:
    """What Galaxy tells the user about a failed job: the job's info and its outputs' messages."""
    job = admin.jobs.show_job(job_id, full_details=True)
    texts = [job.get("info") or ""]
    for output in job.get("outputs", {}).values():
        if output.get("src") == "hda":
            texts.append(gi.datasets.show_dataset(output["id"]).get("misc_info") or "")
    return "\n".join(t for t in texts if t)


def test_a_lost_job_node_fails_its_job_saying_so_and_the_next_training_goes_to_a_node_that_is_up(user):
    """Runs last here: the node comes back before the other end-to-end tests."""
    gi, admin = user
    history = gi.histories.create_history(name="node loss")
    script = galaxy_it.paste_dataset(gi, history["id"], HOLDING_SCRIPT.format(release_at=int(time.time()) + 900),
                                     "hold.py")  # fmt: skip
    lost_job = gi.tools.run_tool(history["id"], TRAINING_TOOL_ID,
                                 {"select_file": {"src": "hda", "id": script}})["jobs"][0]["id"]  # fmt: skip
    lost_node = local_cluster.node_of(admin, lost_job)
    restart_policy = local_cluster.kill_node(lost_node)
    try:
        # Slurm marks the node down after SlurmdTimeout without an answer; Galaxy fails the job.
        assert galaxy_it.wait_for_job(gi, lost_job, timeout=240) == "error"
        assert "DOWN" in local_cluster.slurm_node_states(lost_node), local_cluster.slurm_node_states(lost_node)
        message = failure_text(gi, admin, lost_job)
        assert f"The job node {lost_node} stopped answering while this job ran" in message, message

        quick = galaxy_it.paste_dataset(gi, history["id"], HOLDING_SCRIPT.format(release_at=int(time.time()) + 40),
                                        "quick.py")  # fmt: skip
        next_job = gi.tools.run_tool(history["id"], TRAINING_TOOL_ID,
                                     {"select_file": {"src": "hda", "id": quick}})["jobs"][0]["id"]  # fmt: skip
        assert local_cluster.node_of(admin, next_job) != lost_node
        assert galaxy_it.wait_for_job(gi, next_job, timeout=300) == "ok"
    finally:
        local_cluster.restore_node(lost_node, restart_policy)
