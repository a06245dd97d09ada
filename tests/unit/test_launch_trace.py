"""tests/benchmarks/launch_trace.py reads each part's log lines as they are written (samples from
the local deployment) into times on one clock."""

# ruff: noqa: E501 (log lines as the parts write them)

from __future__ import annotations

from tests.benchmarks import launch_trace

JOURNAL = """\
2026-12-06T10:02:42.625322+0000 gxnb-local-head galaxyctl[7108]: galaxy.tools.actions INFO 2026-12-06 10:02:42,625 [pN:main.2] Setup for job Job[unflushed,tool_id=interactive_tool_ml_jupyter_notebook] complete
2026-12-06T10:02:42.882830+0000 gxnb-local-head galaxyctl[46744]: galaxy.jobs.handler INFO 2026-12-06 10:02:42,882 [pN:handler_0] (727) Job dispatched
2026-12-06T10:02:42.900000+0000 gxnb-local-head galaxyctl[46744]: galaxy.jobs.handler INFO 2026-12-06 10:02:42,900 [pN:handler_0] (7270) Job dispatched
2026-12-06T10:02:43.165199+0000 gxnb-local-head galaxyctl[46744]: galaxy.jobs.runners.cli INFO 2026-12-06 10:02:43,164 [pN:handler_0] (727) queued with identifier: 396
2026-12-06T10:02:47.500000+0000 gxnb-local-head galaxyctl[46744]: gxnb_slurm_runner INFO 2026-12-06 10:02:47,500 [pN:handler_0] (727/396) interactive tool routed to 172.30.0.11
"""
SLURMCTLD = """\
[2026-12-06T10:02:43.201] _slurm_rpc_submit_batch_job: JobId=396 InitPrio=4294901364 usec=1042
[2026-12-06T10:02:43.412] sched: Allocate JobId=396 NodeList=gxnb-local-node1 #CPUs=2 Partition=gxnb
[2026-12-06T10:02:44.000] sched: Allocate JobId=3960 NodeList=gxnb-local-node2 #CPUs=2 Partition=gxnb
[2026-12-06T10:02:59.300] _job_complete: JobId=396 WEXITSTATUS 0
[2026-12-06T10:02:59.301] _job_complete: JobId=396 done
"""
EVENTS = "1796551364512345678 create\n1796551364700000000 start\n1796551370000000000 start\n1796551379000000000 die\n"
TOOL_STDERR = """\
no GPU visible, running on CPU
[I 2026-12-06 10:02:44.900 ServerApp] jupyter_lsp | extension was successfully linked.
[I 2026-12-06 10:02:46.123 ServerApp] Jupyter Server 2.21.1 is running at:
[I 2026-12-06 10:02:46.124 ServerApp] http://0.0.0.0:8888/lab
"""


def test_the_handlers_steps_are_those_of_the_job_asked_for():
    times = launch_trace.galaxy_handler_times(JOURNAL, 727)
    assert times["handler took it"] == launch_trace._utc("2026-12-06T10:02:42.882830+00:00")
    assert round(times["sbatch returned"] - times["handler took it"], 3) == 0.282
    assert round(times["session routed"] - times["sbatch returned"], 3) == 4.335


def test_slurms_allocation_of_the_job_asked_for():
    allocated = launch_trace.slurm_allocated_time(SLURMCTLD, "396")
    assert round(allocated - launch_trace._utc("2026-12-06T10:02:43+00:00"), 3) == 0.412
    assert launch_trace.slurm_allocated_time(SLURMCTLD, "397") is None


def test_slurms_end_of_the_job_asked_for():
    assert launch_trace.slurm_ended_time(SLURMCTLD, "396") == launch_trace._utc("2026-12-06T10:02:59.301+00:00")
    assert launch_trace.slurm_ended_time(SLURMCTLD, "3960") is None


def test_the_containers_first_create_and_start():
    times = launch_trace.docker_event_times(EVENTS)
    assert round(times["container created"], 6) == 1796551364.512346
    assert round(times["container started"], 6) == 1796551364.7
    assert times["container ended"] == 1796551379.0


def test_jupyterlab_listening_from_its_own_log_line():
    listening = launch_trace.jupyter_listening_time(TOOL_STDERR)
    assert round(listening - launch_trace._utc("2026-12-06T10:02:46+00:00"), 6) == 0.123
    assert launch_trace.jupyter_listening_time("nothing yet\n") is None


def test_the_table_names_a_step_it_could_not_find():
    times = {"launch call": 100.0, "job created": 100.25, "first 200": 104.5}
    text = launch_trace.table(times)
    assert "job created" in text and "0.25" in text
    assert "slurm allocated" in text and "(not found)" in text
    assert "4.50" in text and "+4.25" in text
