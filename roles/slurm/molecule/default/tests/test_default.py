"""slurm: a controller and a job node with two (fake) GPUs, each also two shards; jobs run and get
distinct GPUs, shard jobs share a GPU, and no job gets a GPU whole while its shards are in use."""

import base64
import pathlib
import time

NODE_INFO = "sinfo -h -N -p gxnb -o '%N %t %G'"  # the node made on demand has a partition of its own
# The GPU hosts' check (tests/gpu/verify_gpu_node.sh runs it): kept working here on fake GPUs.
GRES_CHECK = pathlib.Path(__file__).resolve().parents[5] / "tests" / "gpu" / "slurm_gres_check.sh"
GPU_ARGS_HELPER = pathlib.Path(__file__).resolve().parents[3] / "files" / "slurm-job-gpus-docker-args"


def wait_for(host, command, predicate, seconds=60):
    out = None
    for _ in range(seconds * 2):
        out = host.run(command)
        if out.rc == 0 and predicate(out.stdout):
            return out.stdout
        time.sleep(0.5)
    raise AssertionError(f"{command}: {out.stdout if out else ''}{out.stderr if out else ''}")


def test_munge_key_is_private_and_munge_works(host):
    key = host.file("/etc/munge/munge.key")
    assert key.user == "munge" and key.mode == 0o400
    assert host.run("munge -n | unmunge").rc == 0


def test_services_run(host):
    for name in ("munge", "slurmctld", "slurmd"):
        assert host.service(name).is_running, name
        assert host.service(name).is_enabled, name


def test_accounting_keeps_each_jobs_gpus_shards_and_comment(host):
    dbd_conf = host.file("/etc/slurm/slurmdbd.conf")
    assert dbd_conf.user == "slurm" and dbd_conf.mode == 0o600  # slurmdbd refuses a file others read
    assert "StoragePass" not in dbd_conf.content_string  # MariaDB's unix_socket: no password anywhere
    assert host.service("slurmdbd").is_running and host.service("mariadb").is_running
    associations = host.check_output("sacctmgr -n -P show associations format=cluster,account,user").split()
    assert {"gxnb|root|", "gxnb|gxnb|", "gxnb|gxnb|root"} <= set(associations), associations
    comment = "gxnb;uid=7;user=ada%40example.org;groups=ml%20lab"
    jobs = [host.check_output(f"sbatch --parsable --account=gxnb --gres={gres} --comment='{comment}' --wrap 'sleep 1'")
            .strip() for gres in ("gpu:1", "shard:1")]  # fmt: skip
    records = wait_for(host, f"sacct -X -n -P -j {','.join(jobs)} --format=JobIDRaw,Comment,AllocTRES,State",
                       lambda s: s.count("COMPLETED") == 2)  # fmt: skip
    by_job = {line.split("|")[0]: line.split("|")[1:] for line in records.splitlines()}
    assert by_job[jobs[0]][0] == comment and "gres/gpu=1" in by_job[jobs[0]][1].split(","), records
    assert by_job[jobs[1]][0] == comment and "gres/shard=1" in by_job[jobs[1]][1].split(","), records


def test_node_is_idle_with_two_gpus(host):
    out = wait_for(host, NODE_INFO, lambda s: " idle " in s)
    name, state, gres = out.split()
    assert (state, gres) == ("idle", "gpu:2,shard:4"), out


def test_consumable_resources_are_tracked(host):
    config = host.check_output("scontrol show config")
    assert "select/cons_tres" in config
    assert "GresTypes               = gpu,shard" in config
    # A job is tried as it is submitted, not up to 3 s later (a launch's wait).
    assert "SchedulerParameters     = batch_sched_delay=0" in config


def test_a_submitted_job_runs(host):
    out = host.run("timeout 60 srun -N1 -n1 hostname")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == host.check_output("hostname -s").strip()


def test_gpu_jobs_get_distinct_gpus_and_a_third_waits_for_one(host):
    host.run("rm -f /tmp/gpu-*.out")
    submit = "sbatch --parsable --gres=gpu:1 --cpus-per-task=1 -o /tmp/gpu-%j.out --wrap '{}'"
    hold = "echo gpus=$SLURM_JOB_GPUS; sleep 20"
    first = host.check_output(submit.format(hold)).strip()
    second = host.check_output(submit.format(hold)).strip()
    third = host.check_output(submit.format("echo gpus=$SLURM_JOB_GPUS")).strip()
    try:
        wait_for(host, f"squeue -h -j {first},{second} -o %T", lambda s: s.split() == ["RUNNING", "RUNNING"])
        # Right after submission the reason is "None" until the scheduler has looked at the job.
        reason = wait_for(host, f"squeue -h -j {third} -o '%T %r'", lambda s: s.split() != ["PENDING", "None"])
        # Resources; on a loaded machine the scheduler may first name Priority (a job ahead of it waits too).
        assert reason.split() in (["PENDING", "Resources"], ["PENDING", "Priority"]), reason
        # A job without a GPU is not held back: only the GPUs are used up.
        cpu_only = host.run("timeout 30 srun -n1 --cpus-per-task=1 bash -c 'echo \"[${SLURM_JOB_GPUS:-none}]\"'")
        assert cpu_only.rc == 0 and cpu_only.stdout.strip() == "[none]", "a job without --gres must see no GPU"
        gpus = {host.check_output(f"cat /tmp/gpu-{job}.out").strip() for job in (first, second)}
        assert gpus == {"gpus=0", "gpus=1"}, gpus
        wait_for(host, f"test -s /tmp/gpu-{third}.out && cat /tmp/gpu-{third}.out", lambda s: "gpus=" in s, 60)
    finally:
        host.run(f"scancel {first} {second} {third}")


def test_shard_jobs_share_the_gpus_and_a_whole_gpu_waits_until_one_has_no_shard_in_use(host):
    """Where GPUs are shared, a job takes a GPU whole by asking for all its shards (2 here): Slurm keeps a
    job's shards on one GPU. (Asking --gres=gpu:1, Slurm 22.05 gives a GPU whose shards are partly in use.)"""
    host.run("rm -f /tmp/shard-*.out")
    shard = "sbatch --parsable --gres=shard:1 --cpus-per-task=1 -o /tmp/shard-%j.out --wrap '{}'"
    hold = "echo gpu=$CUDA_VISIBLE_DEVICES; sleep 60"
    shards = [host.check_output(shard.format(hold)).strip() for _ in range(4)]
    whole = host.check_output("sbatch --parsable --gres=shard:2 --cpus-per-task=1 -o /tmp/shard-%j.out "
                              "--wrap 'echo gpus=$SLURM_JOB_GPUS'").strip()
    try:
        # Four shards on two GPUs: all four run at once.
        wait_for(host, f"squeue -h -j {','.join(shards)} -o %T", lambda s: s.split() == ["RUNNING"] * 4)
        # Each shard job is given one GPU, two jobs each.
        seen = [wait_for(host, f"cat /tmp/shard-{job}.out", lambda s: "gpu=" in s).strip() for job in shards]
        assert sorted(seen) == ["gpu=0", "gpu=0", "gpu=1", "gpu=1"], seen
        # Both GPUs have shards in use: the whole-GPU job waits.
        reason = wait_for(host, f"squeue -h -j {whole} -o '%T %r'", lambda s: s.split() != ["PENDING", "None"])
        assert reason.split() in (["PENDING", "Resources"], ["PENDING", "Priority"]), reason
        # One of GPU 0's shards ends: a GPU partly in use is not given whole.
        on_gpu0 = [job for job, gpu in zip(shards, seen, strict=True) if gpu == "gpu=0"]
        host.run(f"scancel {on_gpu0[0]}")
        time.sleep(15)
        assert host.check_output(f"squeue -h -j {whole} -o %T") == "PENDING"
        # The other ends too: the whole-GPU job gets that GPU.
        host.run(f"scancel {on_gpu0[1]}")
        wait_for(host, f"test -s /tmp/shard-{whole}.out && cat /tmp/shard-{whole}.out", lambda s: "gpus=0" in s, 60)
    finally:
        host.run(f"scancel {' '.join(shards)} {whole}")


def test_the_gpu_hosts_slurm_check_passes_on_the_fake_gpus(host):
    """tests/gpu/slurm_gres_check.sh: its own one-node cluster beside the scenario's gets one GPU."""
    for source in (GRES_CHECK, GPU_ARGS_HELPER):  # this scenario's node runs no containers: no helper installed
        content = base64.b64encode(source.read_bytes()).decode()
        host.check_output(f"echo {content} | base64 -d > /var/tmp/{source.name}")
    helper = f"/var/tmp/{GPU_ARGS_HELPER.name}"
    out = host.run(f"GPU_DOCKER_ARGS_HELPER={helper} timeout 120 bash /var/tmp/{GRES_CHECK.name}")
    assert out.rc == 0 and out.stdout.startswith("PASS "), out.stdout + out.stderr
    assert "docker=-e CUDA_VISIBLE_DEVICES=" in out.stdout, out.stdout  # no NVIDIA toolkit on fake GPUs


# Power saving: the node made on demand (ondemand1) has no helper to start it.


def test_slurmctld_runs_gxnb_nodes_for_the_node_made_on_demand_and_keeps_the_others_on(host):
    config = host.check_output("scontrol show config")
    for line in ("ResumeProgram           = /usr/local/sbin/gxnb-nodes-resume",
                 "SuspendProgram          = /usr/local/sbin/gxnb-nodes-suspend",
                 "ResumeFailProgram       = /usr/local/sbin/gxnb-nodes-resume-fail",
                 "SuspendTime             = 600 sec",
                 f"SuspendExcNodes         = {host.backend.get_hostname().split('.')[0]}"):  # fmt: skip
        assert line in config, line
    settings = host.file("/etc/slurm/gxnb-nodes.json")
    assert (settings.user, settings.group, settings.mode) == ("root", "slurm", 0o640)
    # slurmctld's user runs it; it says what it reaches.
    check = host.run("runuser -u slurm -- /usr/local/sbin/gxnb-nodes check")
    assert check.rc == 2, check.stdout
    assert "the local node helper at /run/gxnb-local-nodes/helper.sock does not answer" in check.stderr


def test_a_node_that_cannot_be_started_is_marked_down_with_the_drivers_reason(host):
    # Off first (its SuspendProgram fails too, without the helper; Slurm counts it off after
    # SuspendTimeout), as Slurm leaves it after its idle time.
    host.check_output("scontrol update NodeName=ondemand1 State=POWER_DOWN")
    wait_for(host, "sinfo -h -n ondemand1 -o %T", lambda s: s.strip().endswith("~"), seconds=150)
    job = host.check_output("runuser -u nobody -- sbatch -p ondemand --parsable --chdir=/tmp --wrap true -o /dev/null")
    reason = wait_for(host, "sinfo -h -n ondemand1 -o '%T|%E'", lambda s: s.startswith("down"), seconds=60)
    assert "gxnb-nodes could not start it: ondemand1: the local node helper" in reason, reason
    log = host.file("/var/log/slurm/gxnb-nodes.log").content_string
    assert "resume ondemand1: failed: ondemand1: the local node helper" in log, log
    host.run(f"scancel {job}")


def test_a_node_a_cloud_makes_is_shown_powered_down_until_a_job_asks_for_it(host):
    """State=CLOUD: no address until the node registers (cloud_reg_addrs), shown while off
    (PrivateData=cloud), reached by slurmctld itself (TreeWidth), and started by gxnb-nodes."""
    config = host.check_output("scontrol show config")
    assert "idle_on_node_suspend,cloud_reg_addrs" in config
    assert "TreeWidth               = 65533" in config
    state = wait_for(host, "sinfo -h -n cloud1 -o %T", lambda s: s.strip() != "", seconds=30)
    assert state.strip() == "idle~", state
    node = host.check_output("scontrol -o show node cloud1")
    flags = node.split(" State=", 1)[1].split()[0].split("+")
    assert "NodeAddr=cloud1 " in node and {"CLOUD", "POWERED_DOWN"} <= set(flags), node
    job = host.check_output("runuser -u nobody -- sbatch -p cloud --parsable --chdir=/tmp --wrap true -o /dev/null")
    reason = wait_for(host, "sinfo -h -n cloud1 -o '%T|%E'", lambda s: s.startswith("down"), seconds=60)
    assert "gxnb-nodes could not start it: cloud1: the local node helper" in reason, reason
    host.run(f"scancel {job}")


def test_a_node_made_from_the_image_runs_the_controllers_configuration_and_registers_its_address(host):
    """What gxnb-node-join leaves a node a cloud made: slurmd -N <node> --conf-server <controller>.
    slurmctld serves its configuration (enable_configless): the node runs today's slurm.conf and
    gres.conf whatever its image holds, and tells its address when it registers (cloud_reg_addrs)."""
    assert "enable_configless" in host.check_output("scontrol show config")
    # The test before left cloud1 down: its job's starts are over (a requeued job may start one
    # more, which marks the node down again) before the node "boots".
    wait_for(host, "squeue -h -p cloud; pgrep -f '[g]xnb-nodes-resume' || true", lambda s: s.strip() == "", seconds=30)
    time.sleep(2)
    host.run("rm -rf /var/lib/slurm/slurmd/conf-cache")
    # A second slurmd on this host, as cloud1 (its own port in slurm.conf, its own pid file: slurmd
    # stops the one its pid file names), booted a second ago as a new instance is (slurmctld asked
    # for the node in the test before), ended by the timeout.
    host.run("up=$(cut -d. -f1 /proc/uptime); setsid unshare -m --time --boottime -$((up - 1)) sh -c "
             "'touch /tmp/cloud1.pid && mount --bind /tmp/cloud1.pid /run/slurmd.pid && "
             "exec timeout 30 slurmd -D --conf-server 127.0.0.1 -N cloud1' </dev/null >/tmp/cloud1-slurmd.log 2>&1 &")
    node = wait_for(host, "scontrol -o show node cloud1", lambda s: "NodeAddr=127.0.0.1 " in s, seconds=25)
    flags = set(node.split(" State=", 1)[1].split()[0].split("+"))
    assert "IDLE" in flags and not flags & {"DOWN", "POWERED_DOWN"}, node
    for name in ("slurm.conf", "gres.conf"):
        served = host.file(f"/var/lib/slurm/slurmd/conf-cache/{name}")
        assert served.exists and served.content_string == host.file(f"/etc/slurm/{name}").content_string, name
    assert host.service("slurmd").is_running, "this host's own slurmd was stopped"
    # The start that failed before (the node down with the driver's reason) is over: it serves again.
    assert "node cloud1 returned to service" in host.check_output("tail -n 50 /var/log/slurm/slurmctld.log")


def test_slurmd_reports_its_containers_start_as_its_boot(host):
    """Nodes in containers share the host's kernel: a resumed node must report a boot after
    slurmctld asked for it (slurm_slurmd_boot_time_is_container_start)."""
    name = host.backend.get_hostname().split(".")[0]
    boot = host.check_output(f"date -d \"$(scontrol show node {name} | grep -o 'BootTime=[^ ]*' | cut -d= -f2)\" +%s")
    container_start = host.check_output("echo $(( $(date +%s) - $(cut -d. -f1 /proc/uptime) + "
                                        "$(cut -d' ' -f22 /proc/1/stat) / $(getconf CLK_TCK) ))")  # fmt: skip
    assert 0 <= int(boot) - int(container_start) <= 5, (boot, container_start)


def test_a_slurmctld_restart_leaves_node_programs_running_and_starts_lost_node_starts_again(host):
    """A restart (a changed slurm.conf) stops slurmctld alone, not the node programs it runs; each
    start of slurmctld runs gxnb-nodes resume-pending as slurmctld's user (the end-to-end test
    loses a start on the local cluster and sees it started again)."""
    assert host.check_output("systemctl show -p KillMode slurmctld") == "KillMode=process"
    before = host.file("/var/log/slurm/gxnb-nodes.log").content_string.count("resume-pending:")
    host.check_output("systemctl restart slurmctld")
    wait_for(host, "grep -c 'resume-pending:' /var/log/slurm/gxnb-nodes.log", lambda s: int(s) > before, seconds=60)
    ran = host.check_output("journalctl -u gxnb-nodes-resume-pending -n 20 --no-pager -o cat")
    assert "resume-pending: slurmctld" in ran, ran
    assert host.check_output("systemctl show -p User gxnb-nodes-resume-pending") == "User=slurm"
    assert host.service("slurmctld").is_running
