"""A fresh clone works: nothing tracked points outside the repository, dangles, or names a
path of one machine (a temporary folder, a home directory)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

from tests.conftest import REPO

# Where this checkout lives: a committed path under it works on one machine only.
CHECKOUT_PARENT = str(REPO.parent) + "/"


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def escapes_repo(link: pathlib.Path, repo: pathlib.Path) -> bool:
    target = pathlib.Path(os.path.normpath(link.parent / os.readlink(link)))
    return not target.is_relative_to(repo)


def tracked_link_problems(files: list[str], repo: pathlib.Path = REPO) -> list[str]:
    problems = []
    for name in files:
        path = repo / name
        if not path.is_symlink():
            continue
        if path.parent != repo and os.readlink(path).startswith(".."):
            problems.append(f"{name} -> {os.readlink(path)} (leaves its folder: archives and checkers drop it)")
        elif escapes_repo(path, repo):
            problems.append(f"{name} -> {os.readlink(path)} (points outside the repository)")
        elif not path.exists():
            problems.append(f"{name} -> {os.readlink(path)} (dangles)")
    return problems


def test_no_tracked_link_points_outside_the_repository_or_dangles():
    problems = tracked_link_problems(tracked_files())
    assert not problems, "tracked links a fresh clone cannot follow:\n" + "\n".join(problems)


def test_the_link_check_catches_an_outside_and_a_dangling_link(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "outside").symlink_to("/tmp/ckv")
    (repo / "dangling").symlink_to("missing-folder")
    (repo / "inside").symlink_to(".")
    (repo / "sub").mkdir()
    (repo / "sub" / "up").symlink_to("../inside")
    problems = tracked_link_problems(["outside", "dangling", "inside", "sub/up"], repo)
    assert [p.split(" ")[0] for p in problems] == ["outside", "dangling", "sub/up"], problems


def machine_paths(text: str, parent: str = CHECKOUT_PARENT) -> list[str]:
    """Absolute paths into this checkout or beside it (a machine's working folder)."""
    return re.findall(r"(?<![\w.])" + re.escape(parent) + r"[\w./-]*", text)


def test_no_tracked_text_file_names_a_path_of_this_machine():
    found = []
    for name in tracked_files():
        path = REPO / name
        if path.is_symlink() or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            found += [f"{name}:{lineno}: {hit}" for hit in machine_paths(line)]
    assert not found, "paths of this machine in tracked files (use a path relative to the repository):\n" + "\n".join(
        found
    )


def test_the_machine_path_check_catches_the_checkout_folder():
    assert machine_paths("ln -s /srv/work/shared/x .; cd /srv/work/main/roles", "/srv/work/") == [
        "/srv/work/shared/x",
        "/srv/work/main/roles",
    ]
    assert machine_paths("home: /home/jovyan/notebooks, cp x ./srv/work/y", "/srv/work/") == []
