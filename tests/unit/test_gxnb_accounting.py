"""GPU accounting (roles/galaxy/files/gxnb_accounting.py): the Galaxy user a job carries into Slurm,
its GPU time from sacct's records, the report per user and group, and the monthly quota that TPV's
rule enforces at submission (through TPV's own dry-run, with an sacct that prints given records)."""

from __future__ import annotations

import datetime
import importlib
import json
import os
import pathlib
import types

import pytest
import yaml

from tests.support.galaxy_config import dry_run, render_tpv

# The module TPV's rules import (tests.support.galaxy_config puts the role's files on the path).
gxnb_accounting = importlib.import_module("gxnb_accounting")

NOW = datetime.datetime(2026, 12, 10, 12, 0, 0)


def galaxy_user(user_id: int, email: str, groups: list[str] = (), deleted: list[str] = ()) -> types.SimpleNamespace:
    """A Galaxy user as the model gives it: groups are UserGroupAssociations."""
    associations = [types.SimpleNamespace(group=types.SimpleNamespace(name=name, deleted=name in deleted))
                    for name in [*groups, *deleted]]  # fmt: skip
    return types.SimpleNamespace(id=user_id, email=email, groups=associations)


def record(job_id: int, comment: str, tres: str, start: str, end: str) -> str:
    return "|".join([str(job_id), comment, tres, start, end])


def test_the_comment_names_the_user_and_their_groups_and_no_name_can_add_a_field():
    user = galaxy_user(7, "ada;uid=1@example.org", ["ml lab", "a,b;uid=2"], deleted=["gone"])
    comment = gxnb_accounting.slurm_comment(user)
    assert " " not in comment and comment.count(";") == 3, comment
    assert gxnb_accounting.parse_comment(comment) == {
        "user_id": 7, "user": "ada;uid=1@example.org", "groups": ["a,b;uid=2", "ml lab"]}  # fmt: skip
    assert gxnb_accounting.parse_comment("somebody's own comment") is None


@pytest.mark.parametrize(("tres", "shards", "gpus"), [
    ("cpu=2,mem=4G,node=1,billing=2,gres/gpu=1", 0, 1.0),
    ("cpu=2,mem=4G,node=1,billing=2,gres/gpu:a100=2,gres/gpu=2", 0, 2.0),
    ("cpu=2,mem=4G,node=1,billing=2,gres/shard=1", 4, 0.25),
    ("cpu=2,mem=4G,node=1,billing=2,gres/shard=4", 4, 1.0),
    ("cpu=2,mem=4G,node=1,billing=2", 4, 0.0),
])  # fmt: skip
def test_a_jobs_gpus_count_a_shard_as_its_part_of_a_gpu(tres, shards, gpus):
    assert gxnb_accounting.tres_gpus(tres, shards) == gpus


def test_gpu_time_is_the_part_of_each_run_inside_the_month_and_adds_up_per_user_and_group():
    ada = gxnb_accounting.slurm_comment(galaxy_user(1, "ada@example.org", ["lab"]))
    bob = gxnb_accounting.slurm_comment(galaxy_user(2, "bob@example.org", ["lab", "course"]))
    start, end = gxnb_accounting.month_bounds(None, NOW)
    assert (start, end) == (datetime.datetime(2026, 12, 1), datetime.datetime(2027, 1, 1))
    lines = [
        record(1, ada, "cpu=2,gres/gpu=1", "2026-12-02T10:00:00", "2026-12-02T11:00:00"),  # 1 h
        record(2, ada, "cpu=2,gres/shard=1", "2026-11-30T23:00:00", "2026-12-01T01:00:00"),  # 1 h in December, 1/4
        record(3, bob, "cpu=2,gres/gpu=2", "2026-12-10T11:30:00", "Unknown"),  # running: 30 min so far, 2 GPUs
        record(4, bob, "cpu=2", "2026-12-03T10:00:00", "2026-12-03T12:00:00"),  # no GPU
        record(5, "", "cpu=2,gres/gpu=1", "2026-12-03T10:00:00", "2026-12-03T12:00:00"),  # not Galaxy's
        record(6, bob, "cpu=2,gres/gpu=1", "Unknown", "Unknown"),  # waiting
    ]
    uses = gxnb_accounting.jobs_use(lines, start, end, NOW, shards_per_gpu=4)
    assert [(u.job_id, u.gpu_seconds) for u in uses] == [("1", 3600.0), ("2", 900.0), ("3", 3600.0)]
    report = gxnb_accounting.totals(uses)
    assert [(u["user"], u["gpu_seconds"], u["jobs"]) for u in report["users"]] == [
        ("ada@example.org", 4500.0, 2), ("bob@example.org", 3600.0, 1)]  # fmt: skip
    assert {g["group"]: g["gpu_seconds"] for g in report["groups"]} == {"lab": 8100.0, "course": 3600.0}


def test_a_running_jobs_comment_comes_from_squeue_until_accounting_has_it():
    ada = gxnb_accounting.slurm_comment(galaxy_user(1, "ada@example.org", ["lab"]))
    lines = [record(1, "", "cpu=2,gres/gpu=1", "2026-12-10T11:00:00", "Unknown"),  # running: no comment yet
             record(2, "", "cpu=2,gres/gpu=1", "2026-12-09T11:00:00", "2026-12-09T12:00:00")]  # not Galaxy's
    filled = gxnb_accounting.with_running_comments(lines, f"1|{ada}\n3|{ada}\n")
    start, end = gxnb_accounting.month_bounds(None, NOW)
    uses = gxnb_accounting.jobs_use(filled, start, end, NOW, shards_per_gpu=0)
    assert [(u.job_id, u.user, u.gpu_seconds) for u in uses] == [("1", "ada@example.org", 3600.0)]


def test_a_month_given_badly_is_named_with_the_form_allowed():
    with pytest.raises(ValueError, match="month '2026/12': give it as YYYY-MM"):
        gxnb_accounting.month_bounds("2026/12", NOW)


USE = {"users": [{"user_id": 1, "user": "ada@students.example.org", "gpu_seconds": 7200.0, "jobs": 3}],
       "groups": [{"group": "lab", "gpu_seconds": 36000.0, "jobs": 9}]}  # fmt: skip
RESETS = datetime.datetime(2027, 1, 1)


@pytest.mark.parametrize(("quota", "groups", "expected"), [
    ({"hours_per_user": 3}, [], ""),
    ({"hours_per_user": 2}, [], "Your GPU use this month is 2.00 GPU-hours and your monthly quota is 2 GPU-hours "
                                "(gxnb_gpu_quota hours_per_user): GPU jobs can start again when it resets on "
                                "2027-01-01 00:00"),
    ({"hours_per_user": 100, "users": {"*@students.example.org": 1.5}}, [],
     "monthly quota is 1.5 GPU-hours (gxnb_gpu_quota users['*@students.example.org'])"),
    ({"hours_per_user": 1, "users": {"ada@students.example.org": 0}}, [], ""),  # 0 for her: no limit
    ({"groups": {"lab": 10}}, ["lab"], "Your group 'lab' has used 10.00 GPU-hours this month, its monthly quota is "
                                       "10 GPU-hours (gxnb_gpu_quota groups['lab'])"),
    ({"groups": {"lab": 10}}, [], ""),  # not her group
    ({"groups": {"l*": 11}}, ["lab"], ""),
])  # fmt: skip
def test_a_user_or_group_at_its_quota_is_refused_naming_the_quota_the_use_and_the_reset(quota, groups, expected):
    answer = gxnb_accounting.refusal(1, "ada@students.example.org", groups, USE, quota, RESETS)
    assert (expected in answer) if expected else answer == "", answer


@pytest.fixture
def fake_sacct(tmp_path, monkeypatch):
    """An sacct that prints the records written to it, and the accounting settings: quota."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    records = tmp_path / "records"
    (bin_dir / "sacct").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat {records}\n")
    (bin_dir / "sacct").chmod(0o755)
    (bin_dir / "squeue").write_text("#!/bin/sh\n")  # no job runs
    (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "gpu-accounting.json"
    monkeypatch.setattr(gxnb_accounting, "CONFIG_FILE", str(config))
    monkeypatch.setattr(gxnb_accounting, "_use_cache", {})

    def setup(quota: dict, lines: list[str]) -> pathlib.Path:
        config.write_text(json.dumps({"shards_per_gpu": 0, "quota": quota}))
        records.write_text("".join(line + "\n" for line in lines))
        return tmp_path / "args"

    return setup


def test_tpvs_rule_refuses_a_gpu_job_past_the_quota_and_lets_others_go(tmp_path, fake_sacct):
    from tpv.commands.test import mock_galaxy

    user_id = mock_galaxy.User("gargravarr", "ada@example.org").id  # TPV's dry-run user
    comment = gxnb_accounting.slurm_comment(galaxy_user(user_id, "ada@example.org"))
    today = datetime.datetime.now()
    ran = record(1, comment, "cpu=2,gres/gpu=1", f"{today:%Y-%m}-01T00:00:00", f"{today:%Y-%m}-01T02:00:00")
    args = fake_sacct({"hours_per_user": 1}, [ran])
    config_dir = render_tpv(tmp_path, gpu_count=2)
    with pytest.raises(Exception, match=r"Your GPU use this month is 2.00 GPU-hours and your monthly quota is 1 "
                                        r"GPU-hours \(gxnb_gpu_quota hours_per_user\)"):  # fmt: skip
        dry_run(config_dir, "interactive_tool_ml_jupyter_notebook", "--user", "ada@example.org")
    assert "--allusers" in args.read_text() and f"--starttime={today:%Y-%m}-01T00:00:00" in args.read_text()
    # Under the quota, the job goes, and carries its user into Slurm.
    gxnb_accounting._use_cache.clear()
    fake_sacct({"hours_per_user": 3}, [ran])
    out = dry_run(config_dir, "interactive_tool_ml_jupyter_notebook", "--user", "ada@example.org")
    params = yaml.safe_load(out[out.index("!!python/object") :].split("\n", 1)[1])["params"]
    assert params["job_--comment"] == f"gxnb;uid={user_id};user=ada@example.org;groups=", params
    # Where no GPUs exist, no GPU quota applies.
    gxnb_accounting._use_cache.clear()
    fake_sacct({"hours_per_user": 1}, [ran])
    dry_run(render_tpv(tmp_path / "cpu", gpu_count=0), "run_jupyter_job", "--user", "ada@example.org")


def test_without_a_quota_slurm_is_not_asked_and_a_silent_accounting_lets_jobs_go(tmp_path, fake_sacct, monkeypatch):
    args = fake_sacct({}, [])
    user = galaxy_user(1, "ada@example.org")
    assert gxnb_accounting.quota_refusal(user) == "" and not args.exists()
    fake_sacct({"hours_per_user": 1}, [])
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert gxnb_accounting.quota_refusal(user) == ""


def test_a_sessions_usage_file_has_the_users_use_their_quotas_the_reset_and_the_jobs_gpus(fake_sacct):
    user = galaxy_user(4, "ada@students.example.org", ["ml-lab", "other"])
    comment = gxnb_accounting.slurm_comment(user)
    today = datetime.datetime.now()
    ran = record(1, comment, "cpu=2,gres/gpu=1", f"{today:%Y-%m}-01T00:00:00", f"{today:%Y-%m}-01T01:30:00")
    fake_sacct({"hours_per_user": 10, "users": {"*@students.example.org": 5}, "groups": {"ml-*": 100}}, [ran])
    gxnb_accounting.load_config()  # (the fixture's settings: shards_per_gpu 0)
    summary = gxnb_accounting.usage_summary(user, "gpu:1", now=today)
    assert summary["used_gpu_hours"] == 1.5 and summary["job_gpus"] == 1.0, summary
    assert summary["as_of_epoch"] == pytest.approx(today.timestamp())  # the session counts its own time from it
    assert (summary["quota_gpu_hours"], summary["quota_setting"]) == (5.0, "users['*@students.example.org']")
    assert summary["groups"] == [{"name": "ml-lab", "used_gpu_hours": 1.5, "quota_gpu_hours": 100.0,
                                  "quota_setting": "groups['ml-*']"}]  # fmt: skip
    assert summary["resets"].endswith("-01T00:00:00") and summary["month"] == f"{today:%Y-%m}"
    assert gxnb_accounting.job_gpus("shard:1", 4) == 0.25 and gxnb_accounting.job_gpus("", 4) == 0.0


def test_without_an_answer_from_accounting_a_session_gets_no_usage_file(fake_sacct, tmp_path, monkeypatch):
    fake_sacct({}, [])
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert gxnb_accounting.usage_summary(galaxy_user(1, "ada@example.org"), "gpu:1") is None
