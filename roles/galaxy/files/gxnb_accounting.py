"""GPU-hours per Galaxy user and group, from Slurm's accounting, and the monthly GPU-hour quotas.

Every job Galaxy sends to Slurm carries its Galaxy user and that user's groups in its comment
(TPV: job_--comment from slurm_comment()); slurmdbd keeps the comment with the job's GPUs and
shards (AllocTRES gres/gpu, gres/shard) and its start and end. A job's GPU time in a month is the
part of its run inside the month times its GPUs, a shard counting 1/shards_per_gpu of a GPU.

    gxnb-gpu-usage                      # this month, per user and per group
    gxnb-gpu-usage --month 2026-11 --json
    gxnb-gpu-usage --user ada@example.org

The settings (shards per GPU, quotas) are the galaxy role's, in CONFIG_FILE. Months are the
server's local time, as Slurm's own times.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import fnmatch
import json
import logging
import os
import subprocess
import sys
import time
import urllib.parse

CONFIG_FILE = os.environ.get("GXNB_GPU_ACCOUNTING_CONFIG", "/etc/gxnb/gpu-accounting.json")
COMMENT_PREFIX = "gxnb"
# A launch reads the month's use up to three times (TPV's rule, its message, the session's usage
# file): one sacct call serves them.
USE_CACHE_SECONDS = 5.0

log = logging.getLogger(__name__)
_use_cache: dict[str, tuple[float, dict]] = {}


@dataclasses.dataclass
class JobUse:
    job_id: str
    user_id: int
    user: str
    groups: list[str]
    gpus: float
    seconds: float

    @property
    def gpu_seconds(self) -> float:
        return self.gpus * self.seconds


def load_config(path: str | None = None) -> dict:
    try:
        with open(path or CONFIG_FILE, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def galaxy_groups(user) -> list[str]:
    """The Galaxy groups the user is in (none for TPV's dry-run user, which has no groups)."""
    associations = getattr(user, "groups", None) or []
    return sorted(a.group.name for a in associations if a.group is not None and not a.group.deleted)


def slurm_comment(user) -> str:
    """The job's Slurm comment: gxnb;uid=ID;user=EMAIL;groups=G1,G2 (each value percent-encoded,
    so that no user-chosen name can add a field or break sbatch's line)."""
    if user is None:
        return f"{COMMENT_PREFIX};uid=0;user=;groups="
    quoted = ",".join(urllib.parse.quote(name, safe="") for name in galaxy_groups(user))
    return f"{COMMENT_PREFIX};uid={int(user.id)};user={urllib.parse.quote(user.email, safe='@')};groups={quoted}"


def parse_comment(comment: str) -> dict | None:
    fields = comment.split(";")
    if not fields or fields[0] != COMMENT_PREFIX:
        return None
    values = dict(field.split("=", 1) for field in fields[1:] if "=" in field)
    try:
        user_id = int(values.get("uid", ""))
    except ValueError:
        return None
    groups = [urllib.parse.unquote(name) for name in values.get("groups", "").split(",") if name]
    return {"user_id": user_id, "user": urllib.parse.unquote(values.get("user", "")), "groups": groups}


def month_bounds(month: str | None, now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """The month YYYY-MM (None: this one) as [start, end) in local time."""
    if month:
        try:
            start = datetime.datetime.strptime(month, "%Y-%m")
        except ValueError:
            raise ValueError(f"month '{month}': give it as YYYY-MM, such as {now:%Y-%m}") from None
    else:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + datetime.timedelta(days=32)).replace(day=1)
    return start, end


def tres_gpus(alloc_tres: str, shards_per_gpu: int) -> float:
    """AllocTRES (cpu=2,mem=4G,node=1,billing=2,gres/gpu=1 or gres/shard=1) as GPUs. A typed
    gres/gpu:a100=1 repeats gres/gpu's count: only the untyped ones count."""
    counts = dict(item.partition("=")[::2] for item in alloc_tres.split(","))
    gpus = float(counts["gres/gpu"]) if counts.get("gres/gpu", "").isdigit() else 0.0
    if shards_per_gpu > 0 and counts.get("gres/shard", "").isdigit():
        gpus += int(counts["gres/shard"]) / shards_per_gpu
    return gpus


def parse_time(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:  # Unknown, None: not started, still running
        return None


def sacct_lines(start: datetime.datetime, end: datetime.datetime) -> list[str]:
    """Every job of every user that ran in [start, end): sacct's records, one a line."""
    command = ["sacct", "--allusers", "--allocations", "--noheader", "--parsable2",
               f"--starttime={start:%Y-%m-%dT%H:%M:%S}", f"--endtime={end:%Y-%m-%dT%H:%M:%S}",
               "--format=JobIDRaw,Comment,AllocTRES,Start,End"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"sacct failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.splitlines()


def with_running_comments(lines: list[str], running: str) -> list[str]:
    """Slurm's accounting gets a job's comment when the job ends: a running job's comes from
    squeue (`squeue -o %i|%k` lines: running)."""
    comments = dict(line.split("|", 1) for line in running.splitlines() if "|" in line)
    filled = []
    for line in lines:
        fields = line.split("|")
        if len(fields) >= 5 and not fields[1] and fields[0] in comments:
            fields[1] = comments[fields[0]]
        filled.append("|".join(fields))
    return filled


def squeue_comments() -> str:
    result = subprocess.run(["squeue", "--noheader", "--all", "--format=%i|%k"], capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"squeue failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def jobs_use(lines: list[str], start: datetime.datetime, end: datetime.datetime, now: datetime.datetime,
             shards_per_gpu: int) -> list[JobUse]:  # fmt: skip
    """The Galaxy jobs' GPU use inside [start, end): each job's run clipped to it (one still running
    counts until now)."""
    uses = []
    for line in lines:
        fields = line.split("|")
        if len(fields) < 5:
            continue
        job_id, comment, alloc_tres, started, ended = fields[:5]
        owner = parse_comment(comment)
        began = parse_time(started)
        if owner is None or began is None:
            continue
        finished = parse_time(ended) or now
        seconds = (min(finished, end, now) - max(began, start)).total_seconds()
        gpus = tres_gpus(alloc_tres, shards_per_gpu)
        if seconds > 0 and gpus > 0:
            uses.append(JobUse(job_id, owner["user_id"], owner["user"], owner["groups"], gpus, seconds))
    return uses


def totals(uses: list[JobUse]) -> dict:
    """GPU-seconds and jobs per user (by id, with the newest email seen) and per group."""
    users: dict[int, dict] = {}
    groups: dict[str, dict] = {}
    for use in uses:
        entry = users.setdefault(use.user_id, {"user_id": use.user_id, "gpu_seconds": 0.0, "jobs": 0})
        entry.update(user=use.user)
        entry["gpu_seconds"] += use.gpu_seconds
        entry["jobs"] += 1
        for name in use.groups:
            group = groups.setdefault(name, {"group": name, "gpu_seconds": 0.0, "jobs": 0})
            group["gpu_seconds"] += use.gpu_seconds
            group["jobs"] += 1
    return {"users": sorted(users.values(), key=lambda u: -u["gpu_seconds"]),
            "groups": sorted(groups.values(), key=lambda g: -g["gpu_seconds"])}  # fmt: skip


def month_use(month: str | None = None, now: datetime.datetime | None = None, config: dict | None = None) -> dict:
    config = load_config() if config is None else config
    now = now or datetime.datetime.now()
    start, end = month_bounds(month, now)
    lines = sacct_lines(start, end)
    if any(len(f) >= 5 and not f[1] and parse_time(f[4]) is None for f in (line.split("|") for line in lines)):
        lines = with_running_comments(lines, squeue_comments())
    uses = jobs_use(lines, start, end, now, int(config.get("shards_per_gpu", 0)))
    return {"month": f"{start:%Y-%m}", "start": start.isoformat(), "end": end.isoformat(), **totals(uses)}


def hours_text(hours: float) -> str:
    """2.00, 0.5, 0.0025: two decimals, or two significant digits below an hour."""
    return f"{hours:.2f}" if hours >= 1 or hours == 0 else f"{hours:.2g}"


def first_match(patterns: dict, name: str) -> tuple[str, float] | None:
    for pattern, hours in patterns.items():
        if fnmatch.fnmatchcase(name.lower(), str(pattern).lower()):
            return str(pattern), float(hours)
    return None


def user_quota(quota: dict, email: str) -> tuple[str, float]:
    """The quota that applies to the user: (its setting, GPU-hours; 0: none)."""
    matched = first_match(quota.get("users") or {}, email)
    if matched:
        return f"users['{matched[0]}']", matched[1]
    return "hours_per_user", float(quota.get("hours_per_user") or 0)


def group_quotas(quota: dict, groups: list[str]) -> list[tuple[str, str, float]]:
    """The user's groups that have a quota: (group, its setting, GPU-hours)."""
    found = []
    for name in groups:
        matched = first_match(quota.get("groups") or {}, name)
        if matched and matched[1] > 0:
            found.append((name, f"groups['{matched[0]}']", matched[1]))
    return found


def user_hours_of(use: dict, user_id: int) -> float:
    return sum(u["gpu_seconds"] for u in use["users"] if u["user_id"] == user_id) / 3600


def refusal(user_id: int, email: str, groups: list[str], use: dict, quota: dict, resets: datetime.datetime) -> str:
    """Why a user may not start another GPU job this month ("" when they may)."""
    user_hours = user_hours_of(use, user_id)
    setting, limit = user_quota(quota, email)
    reset_text = f"{resets:%Y-%m-%d %H:%M} (server time)"
    if limit > 0 and user_hours >= limit:
        return (f"Your GPU use this month is {hours_text(user_hours)} GPU-hours and your monthly quota is {limit:g} "
                f"GPU-hours (gxnb_gpu_quota {setting}): GPU jobs can start again when it resets on {reset_text}, "
                f"or when the administrators raise it.")  # fmt: skip
    group_hours = group_hours_of(use)
    for name, setting, limit in group_quotas(quota, groups):
        if group_hours.get(name, 0.0) >= limit:
            return (f"Your group '{name}' has used {hours_text(group_hours[name])} GPU-hours this month, its monthly "
                    f"quota is {limit:g} GPU-hours (gxnb_gpu_quota {setting}): GPU jobs of its members can start "
                    f"again when it resets on {reset_text}, or when the administrators raise it.")  # fmt: skip
    return ""


def cached_month_use(now: datetime.datetime, config: dict) -> dict:
    """This month's use, read at most every USE_CACHE_SECONDS."""
    month = f"{now:%Y-%m}"
    cached = _use_cache.get(month)
    if cached and time.monotonic() - cached[0] < USE_CACHE_SECONDS:
        return cached[1]
    use = month_use(None, now, config)
    _use_cache.clear()
    _use_cache[month] = (time.monotonic(), use)
    return use


def use_or_none(now: datetime.datetime, config: dict, user, unanswered: str) -> dict | None:
    """This month's use, or None where accounting does not answer (the handler's log says what was
    left undone for the user): a broken slurmdbd must not stop a launch."""
    try:
        return cached_month_use(now, config)
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        log.warning("GPU %s of %s, accounting did not answer: %s", unanswered, user.email, error)
        return None


def group_hours_of(use: dict) -> dict[str, float]:
    return {g["group"]: g["gpu_seconds"] / 3600 for g in use["groups"]}


def job_gpus(gres: str, shards_per_gpu: int) -> float:
    """The GPUs a job asks Slurm for (TPV's job_--gres: gpu:1, shard:1, shard:4) as GPUs."""
    kind, _, count = str(gres or "").partition(":")
    if not count.isdigit():
        return 0.0
    if kind == "gpu":
        return float(count)
    return int(count) / shards_per_gpu if kind == "shard" and shards_per_gpu > 0 else 0.0


def usage_summary(user, gres: str = "", now: datetime.datetime | None = None,
                  config: dict | None = None) -> dict | None:  # fmt: skip
    """What a session shows its user (the runner writes it into the session's secrets folder as
    gpu_usage.json): their GPU-hours this month before this job, the quotas that apply to them,
    when they reset, and the GPUs this job holds (the session adds its own time). None where
    accounting does not answer."""
    config = load_config() if config is None else config
    now = now or datetime.datetime.now()
    use = use_or_none(now, config, user, "use not written for the session")
    if use is None:
        return None
    quota = config.get("quota") or {}
    setting, limit = user_quota(quota, user.email)
    group_hours = group_hours_of(use)
    _, resets = month_bounds(None, now)
    return {
        "month": use["month"],
        "as_of": now.isoformat(timespec="seconds"),
        "as_of_epoch": now.timestamp(),
        "resets": resets.isoformat(timespec="seconds"),
        "used_gpu_hours": round(user_hours_of(use, int(user.id)), 6),
        "quota_gpu_hours": limit or None,
        "quota_setting": setting if limit else "",
        "groups": [{"name": name, "used_gpu_hours": round(group_hours.get(name, 0.0), 6), "quota_gpu_hours": hours,
                    "quota_setting": group_setting}
                   for name, group_setting, hours in group_quotas(quota, galaxy_groups(user))],  # fmt: skip
        "job_gpus": job_gpus(gres, int(config.get("shards_per_gpu", 0))),
    }


def quota_refusal(user, now: datetime.datetime | None = None, config: dict | None = None) -> str:
    """TPV's rule: why this Galaxy user may not start a GPU job now ("" when they may). With no
    quota set, Slurm is not asked. Where accounting does not answer, the job goes (and the handler's
    log says why): a broken slurmdbd must not stop the service."""
    config = load_config() if config is None else config
    quota = config.get("quota") or {}
    if user is None or not (quota.get("hours_per_user") or quota.get("users") or quota.get("groups")):
        return ""
    now = now or datetime.datetime.now()
    use = use_or_none(now, config, user, "quota not checked")
    if use is None:
        return ""
    _, resets = month_bounds(None, now)
    return refusal(int(user.id), user.email, galaxy_groups(user), use, quota, resets)


def print_table(use: dict, only_user: str | None, only_group: str | None) -> None:
    print(f"GPU-hours in {use['month']} ({use['start']} to {use['end']}, server time)")
    users = [u for u in use["users"] if only_user in (None, u["user"])]
    groups = [g for g in use["groups"] if only_group in (None, g["group"])]
    if only_group is None:
        print(f"\n{'user':40} {'GPU-hours':>10} {'jobs':>6}")
        for entry in users:
            print(f"{entry['user'] or '(id ' + str(entry['user_id']) + ')':40} {entry['gpu_seconds'] / 3600:10.3f} "
                  f"{entry['jobs']:6d}")  # fmt: skip
        all_hours, all_jobs = sum(u["gpu_seconds"] for u in users) / 3600, sum(u["jobs"] for u in users)
        print(f"{'all users':40} {all_hours:10.3f} {all_jobs:6d}")
    if only_user is None:
        print(f"\n{'group':40} {'GPU-hours':>10} {'jobs':>6}")
        for entry in groups:
            print(f"{entry['group']:40} {entry['gpu_seconds'] / 3600:10.3f} {entry['jobs']:6d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gxnb-gpu-usage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--month", help="YYYY-MM (default: this month)")
    parser.add_argument("--user", help="only this user (email)")
    parser.add_argument("--group", help="only this Galaxy group")
    parser.add_argument("--json", action="store_true", help="print JSON (GPU-seconds) instead of a table")
    args = parser.parse_args(argv)
    try:
        use = month_use(args.month)
    except ValueError as error:
        parser.error(str(error))
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        print(f"gxnb-gpu-usage: Slurm's accounting did not answer: {error}", file=sys.stderr)
        return 1
    if args.json:
        use["users"] = [u for u in use["users"] if args.user in (None, u["user"])]
        use["groups"] = [g for g in use["groups"] if args.group in (None, g["group"])]
        print(json.dumps(use, indent=2))
    else:
        print_table(use, args.user, args.group)
    return 0


if __name__ == "__main__":
    sys.exit(main())
