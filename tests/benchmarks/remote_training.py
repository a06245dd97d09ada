#!/usr/bin/env python3
"""Remote training against the local deployment: upload speed and time from submit to running.

Usage: .venv/bin/python tests/benchmarks/remote_training.py [--size-mb 1024] [-n 3] [--in-notebook]
(--size-mb 0: no H5 upload, only the tiny script's jobs)

Uses the image's client (container/gxnb/remote.py) from this machine, as a new user:
uploads one H5 file of --size-mb through nginx with Galaxy's chunked (tus) upload and
prints MB/s, then submits run_jupyter_job -n times with a trivial script and prints
the seconds from the submit call until the job is running. --in-notebook also times the
same upload from inside a notebook session (the image's client in a kernel, through the
job bridge to nginx), as a notebook user does it. Goals (issue): >= 100 MB/s on loopback,
<= 10 s to running; the run_script_job call of a tiny script to running <= 3 s.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "container")]

from gxnb import remote  # noqa: E402

from tests.support import galaxy_it  # noqa: E402


def write_h5(path: Path, size_mb: int) -> None:
    import h5py
    import numpy as np

    rows = size_mb * 1024 * 1024 // (4 * 1024)
    with h5py.File(path, "w") as h5:
        data = h5.create_dataset("X", shape=(rows, 1024), dtype="float32")
        block = np.random.default_rng(0).random((4096, 1024), dtype=np.float32)
        for start in range(0, rows, 4096):
            stop = min(rows, start + 4096)
            data[start:stop] = block[: stop - start]


def upload_from_a_notebook(endpoints: dict, key: str, size_mb: int) -> tuple[float, float]:
    """(MB, seconds) of one upload run in a notebook session's kernel."""
    session = galaxy_it.start_session(endpoints, key)
    code = "import time\nfrom pathlib import Path\n" + inspect.getsource(write_h5) + f"""
from gxnb import remote
path = Path("big.h5")
write_h5(path, {size_mb})
gi = remote.connect(None, None)  # the session's GALAXY_URL and API_KEY
history_id = gi.histories.create_history(name="upload from a notebook")["id"]
start = time.monotonic()
remote.upload(gi, path, history_id, "h5", progress=False)
print("uploaded", path.stat().st_size / 1e6, time.monotonic() - start)
path.unlink()
"""
    try:
        out = session.run_code(code, timeout=1800)
    finally:
        session.api("POST", "api/shutdown")
    line = next(line for line in out.splitlines() if line.startswith("uploaded"))
    return float(line.split()[1]), float(line.split()[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("-n", type=int, default=3, help="job submissions to time")
    parser.add_argument("--in-notebook", action="store_true", help="also upload from inside a notebook session")
    args = parser.parse_args()
    endpoints = galaxy_it.load_endpoints()
    _email, key = galaxy_it.create_user(endpoints["galaxy_url"], endpoints["admin_api_key"])
    gi = remote.connect(endpoints["galaxy_url"], key)
    history_id = gi.histories.create_history(name="remote training benchmark")["id"]
    with tempfile.TemporaryDirectory() as tmp:
        if args.size_mb > 0:
            h5 = Path(tmp) / "big.h5"
            write_h5(h5, args.size_mb)
            size_mb = h5.stat().st_size / 1e6
            start = time.monotonic()
            remote.upload(gi, h5, history_id, "h5", progress=True)
            upload_s = time.monotonic() - start
            print(f"upload: {size_mb:.0f} MB in {upload_s:.1f} s = {size_mb / upload_s:.0f} MB/s (goal >= 100 MB/s)")
        if args.in_notebook and args.size_mb > 0:
            mb, seconds = upload_from_a_notebook(endpoints, key, args.size_mb)
            print(f"upload from a notebook session: {mb:.0f} MB in {seconds:.1f} s = {mb / seconds:.0f} MB/s")

        script = Path(tmp) / "noop.py"  # a tiny script (40 bytes), no data
        script.write_text("import time\ntime.sleep(5)\nprint('done')\n")
        to_running, with_upload = [], []
        for i in range(args.n):
            start = time.monotonic()
            job = remote.submit_script_job(script, server=endpoints["galaxy_url"], key=key,
                                           new_history_name=f"benchmark {i}", progress=False)  # fmt: skip
            submitted = time.monotonic()
            while (state := job.status()) not in ("running", "ok", "error", "failed"):
                time.sleep(0.2)
            to_running.append(time.monotonic() - submitted)
            with_upload.append(time.monotonic() - start)
            print(f"job {i + 1}: script upload + submit {submitted - start:.1f} s, then {state} after "
                  f"{to_running[-1]:.1f} s")  # fmt: skip
            job.wait(progress=False)
    print(f"job submitted -> running: median {statistics.median(to_running):.1f} s, max {max(to_running):.1f} s "
          f"over {len(to_running)} jobs (goal <= 10 s)")  # fmt: skip
    print(f"run_script_job call -> running (with the script's upload): median {statistics.median(with_upload):.1f} s "
          "(goal for a tiny script <= 3 s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
