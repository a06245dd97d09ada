"""Fail when an Ansible log's recap shows a change (or a failure): a second run must change nothing."""

from __future__ import annotations

import re
import sys


def changed_tasks(log: str) -> list[str]:
    tasks, current = [], None
    for line in log.splitlines():
        if line.startswith("TASK ["):
            current = line.split("[", 1)[1].rsplit("]", 1)[0]
        elif line.startswith("changed:") and current:
            tasks.append(current)
    return tasks


def main(path: str) -> int:
    log = open(path).read()
    recaps = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", log, re.M)
    if not recaps:
        print(f"{path}: no play recap found", file=sys.stderr)
        return 1
    bad = [(h, c, u, f) for h, c, u, f in recaps if int(c) or int(u) or int(f)]
    if bad:
        for host, changed, unreachable, failed in bad:
            print(f"{host}: changed={changed} unreachable={unreachable} failed={failed}", file=sys.stderr)
        for task in changed_tasks(log):
            print(f"  changed on the second run: {task}", file=sys.stderr)
        return 1
    print(f"idempotent: {', '.join(h for h, *_ in recaps)} changed=0")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
