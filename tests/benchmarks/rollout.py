#!/usr/bin/env python3
"""Seconds from rollout start until new launches use the new digest, per-node pull time, and the
first launch after the rollout (pre-pulled: no download during the launch).

    .venv/bin/python tests/benchmarks/rollout.py [--layer-mb 200] [--cold-launch] [--keep]

Needs the local deployment (make deploy-local). The image rolled out is the built cpu image
plus a layer of --layer-mb random megabytes (what a package update adds), so every run has a
new digest and a real download. The image tests are skipped (they are the operator's choice:
notebook_rollout_image_tests); the rollout is rolled back at the end unless --keep.
--cold-launch also times a launch after removing the image from the (local) node, for comparison.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.benchmarks.time_to_notebook import one_launch  # noqa: E402
from tests.image.conftest import IMAGE  # noqa: E402
from tests.support import galaxy_it  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
SKIP_IMAGE_TESTS = json.dumps({"notebook_rollout_image_tests": ""})


def build(tag: str, layer_mb: int) -> None:
    user = subprocess.check_output(["docker", "image", "inspect", "-f", "{{.Config.User}}", IMAGE], text=True).strip()
    dockerfile = (f"FROM {IMAGE}\nENV GXNB_ROLLOUT_TEST={tag}\nUSER root\n"
                  f"RUN head -c {layer_mb}M /dev/urandom > /opt/gxnb/benchmark-layer.bin\nUSER {user}\n")  # fmt: skip
    subprocess.run(["docker", "build", "-q", "-t", f"gxnb/rollout-bench:{tag}", "-"], input=dockerfile, text=True,
                   check=True, capture_output=True)  # fmt: skip


def rollout(*args: str) -> float:
    start = time.monotonic()
    run = subprocess.run([REPO / "scripts/rollout-image.sh", *args], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"rollout failed:\n{run.stdout[-3000:]}{run.stderr[-2000:]}")
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-mb", type=int, default=200, help="size of the new layer (default 200)")
    parser.add_argument("--cold-launch", action="store_true", help="also time a launch without pre-pull")
    parser.add_argument("--keep", action="store_true", help="keep the new image rolled out")
    args = parser.parse_args()
    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    print(f"building {tag}: {IMAGE} + {args.layer_mb} MB layer", flush=True)
    build(tag, args.layer_mb)

    wall = rollout(tag, f"gxnb/rollout-bench:{tag}", "-e", SKIP_IMAGE_TESTS)
    summary = json.loads((REPO / ".deploy-local" / "rollout-summary.json").read_text())
    first_launch = one_launch(endpoints, key)
    print(f"rollout {summary['old']} -> {summary['new']}")
    print(f"rollout script wall time (push {args.layer_mb} MB layer, pre-pull, switch, smoke test): {wall:.1f} s")
    print(f"seconds from rollout start until new launches use the new digest: "
          f"{summary['seconds_until_new_launches_use_it']} s")  # fmt: skip
    for node, seconds in summary["pull_seconds"].items():
        print(f"pre-pull on {node}: {seconds} s")
    print(f"smoke test launch (through nginx): {summary['smoke_test']['seconds_to_jupyterlab']} s")
    print(f"first user launch after the rollout (pre-pulled): {first_launch:.1f} s")

    if args.cold_launch:
        # The same image removed from the node again: the launch itself has to pull it.
        node = next(iter(summary["pull_seconds"]))
        subprocess.run(["docker", "exec", node, "docker", "rmi", summary["new"]], check=True, capture_output=True)
        cold = one_launch(endpoints, key)
        print(f"launch when the node lacks the image (pull during the launch): {cold:.1f} s "
              f"({cold / first_launch:.1f}x the pre-pulled launch)")  # fmt: skip

    if not args.keep:
        rollout("--rollback", "-e", '{"notebook_rollout_smoke_test": false}')
        print(f"rolled back to {summary['old']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
