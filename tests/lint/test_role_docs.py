"""Every role has a README whose inputs section matches its argument spec, and every option is described."""

from __future__ import annotations

import pytest

from tests.support import role_docs

ROLES = role_docs.roles([])


def test_every_role_has_an_argument_spec():
    without = sorted(p.name for p in role_docs.ROLES.iterdir() if p.is_dir() and p not in ROLES)
    assert not without, f"roles without meta/argument_specs.yml: {without}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_option_is_described(role):
    missing = role_docs.undescribed(role)
    assert not missing, f"{role.name}: options without a description in meta/argument_specs.yml: {missing}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_readme_inputs_match_the_argument_spec(role):
    readme = role / "README.md"
    assert readme.exists(), f"{role.name} has no README.md (python tests/support/role_docs.py --write {role.name})"
    text = readme.read_text()
    assert role_docs.BEGIN in text, f"{readme}: no generated inputs section"
    assert role_docs.updated(text, role_docs.render(role)) == text, (
        f"{readme} is out of step with meta/argument_specs.yml: python tests/support/role_docs.py --write {role.name}"
    )
    prose = text.split(role_docs.BEGIN)[0]
    assert len(prose.split()) >= 25, f"{readme}: say what the role does above the inputs section"


def test_a_new_option_makes_the_readme_stale(tmp_path):
    role = tmp_path / "demo"
    (role / "meta").mkdir(parents=True)
    spec = role / "meta" / "argument_specs.yml"
    spec.write_text("argument_specs:\n  main:\n    short_description: Demo\n    options:\n"
                    "      demo_port: {type: int, description: Port}\n")
    readme_text = role_docs.updated("# demo\n", role_docs.render(role))
    spec.write_text(spec.read_text() + "      demo_host: {type: str}\n")
    assert role_docs.updated(readme_text, role_docs.render(role)) != readme_text
    assert role_docs.undescribed(role) == ["main: demo_host"]


ALLOWED_OPTION_KEYS = {"type", "description", "required", "no_log", "choices", "elements", "default", "options",
                       "aliases", "version_added"}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_option_specs_have_only_known_keys(role):
    """An unquoted comma in a flow-style description makes a stray key of the rest of the sentence."""
    stray = [f"{entry_point}: {name}: {sorted(set(option) - ALLOWED_OPTION_KEYS)}"
             for entry_point, spec in role_docs.argument_specs(role).items()
             for name, option in (spec.get("options") or {}).items() if set(option) - ALLOWED_OPTION_KEYS]
    assert not stray, f"{role.name}: unknown keys in meta/argument_specs.yml (quote the description?): {stray}"
