"""The README's map stays true: its layout names every role and top folder, and nothing that is
gone; it leads to every page of docs/, and no link of the README or docs/ is broken; every
default a role has is one of its documented inputs."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.conftest import REPO

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def layout_bullets() -> dict[str, str]:
    """The layout's bullets by the folder each begins with (`roles/` -> its text)."""
    bullets = re.split(r"^- ", readme_section("Layout"), flags=re.MULTILINE)[1:]
    return {re.match(r"`([^`]+)`", bullet).group(1): bullet for bullet in bullets if bullet.startswith("`")}


def top_folders() -> set[str]:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return {name.split("/")[0] + "/" for name in tracked.splitlines() if "/" in name and not name.startswith(".")}


def test_the_layout_names_every_top_folder_and_no_missing_one():
    named = {folder.split("/")[0] + "/" for folder in layout_bullets()}
    assert top_folders() - named == set(), "top folders the README's layout does not name"
    missing = sorted(folder for folder in named if not (REPO / folder).is_dir())
    assert not missing, f"the README's layout names folders that do not exist: {missing}"


def test_the_layout_names_every_role_and_no_missing_one():
    bullet = layout_bullets()["roles/"]
    named = set(re.findall(r"`([a-z][a-z0-9_]*)`", bullet))
    assert set(ROLES) - named == set(), "roles the README's layout does not name"
    assert named - set(ROLES) == set(), "the README's layout names roles that do not exist"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_of_a_role_is_a_documented_input(role):
    defaults_file = REPO / "roles" / role / "defaults" / "main.yml"
    if not defaults_file.exists():
        pytest.skip(f"{role} has no defaults")
    defaults = yaml.safe_load(defaults_file.read_text()) or {}
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    documented = {name for entry in specs.values() for name in (entry.get("options") or {})}
    undocumented = sorted(name for name in defaults if name not in documented and not name.startswith("__"))
    assert not undocumented, f"{role}: defaults in no argument spec (nor its README): {undocumented}"


MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def markdown_files() -> list:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_of_the_readme_and_docs_leads_to_a_file(page):
    targets = [t for t in MARKDOWN_LINK.findall(page.read_text()) if "://" not in t]
    broken = [t for t in targets if not (page.parent / t).exists()]
    assert not broken, f"{page.relative_to(REPO)} links to what does not exist: {broken}"


def test_the_readme_is_a_map_that_leads_to_every_page_of_docs():
    linked = set(MARKDOWN_LINK.findall(readme_section("Where to read more")))
    pages = {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")}
    assert pages - linked == set(), "pages of docs/ the README's 'Where to read more' does not lead to"
    # A newcomer's map: the details live in docs/.
    assert len((REPO / "README.md").read_text().splitlines()) <= 200
