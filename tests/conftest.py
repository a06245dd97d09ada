"""Shared test helpers: repository paths and rendering of the repository's templates."""

from __future__ import annotations

import pathlib

import jinja2
import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]


def render_template(path: pathlib.Path, **variables) -> str:
    """Render one of the repository's Jinja templates outside Ansible (strict: no undefined names)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_nice_yaml"] = lambda data, indent=2, sort_keys=True: yaml.safe_dump(
        data, indent=indent, sort_keys=sort_keys, default_flow_style=False
    )
    return env.from_string(path.read_text()).render(**variables)


@pytest.fixture(scope="session")
def repo() -> pathlib.Path:
    return REPO
