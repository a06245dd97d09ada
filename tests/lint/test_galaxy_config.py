"""Tool XMLs against Galaxy's XSD (planemo skips it for interactive tools) and TPV's lint; what
TPV decides for jobs is tested in tests/unit/test_tpv_rules.py."""

from __future__ import annotations

import pathlib

import pytest
from lxml import etree

from tests.conftest import render_template
from tests.support.galaxy_config import TOOL_VARS, TOOLS_DIR, render_tpv, tpv

TOOL_TEMPLATES = sorted(TOOLS_DIR.rglob("*.xml.j2"))


def galaxy_xsd() -> etree.XMLSchema:
    import galaxy.tool_util

    xsd = pathlib.Path(galaxy.tool_util.__file__).parent / "xsd" / "galaxy.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


@pytest.mark.parametrize("template", TOOL_TEMPLATES, ids=lambda p: p.name)
def test_tool_xml_is_valid_against_galaxys_xsd(template):
    xml = render_template(template, **TOOL_VARS)
    document = etree.fromstring(xml.encode())
    schema = galaxy_xsd()
    assert schema.validate(document), "\n".join(str(e) for e in schema.error_log)


@pytest.mark.parametrize(("routing", "requires_domain", "path_in_url"),
                         [("subdomain", "True", "False"), ("path", "False", "True")])
def test_the_entry_point_follows_the_routing_setting(routing, requires_domain, path_in_url):
    variables = {"tool": dict(TOOL_VARS["tool"], it_routing=routing)}
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **variables)
    document = etree.fromstring(xml.encode())
    assert galaxy_xsd().validate(document)
    entry_point = document.find("entry_points/entry_point")
    assert entry_point.get("requires_domain") == requires_domain
    assert entry_point.get("requires_path_in_url") == path_in_url


def test_the_session_gets_its_idle_timeout_and_walltime_from_the_settings():
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **TOOL_VARS)
    env = {e.get("name"): e.text for e in etree.fromstring(xml.encode()).iter("environment_variable")}
    assert env["GXNB_SESSION_IDLE_TIMEOUT"] == "3600" and env["GXNB_SESSION_WALLTIME"] == "43200", env


@pytest.mark.parametrize(("setting", "passed"), [(None, "off"), (False, "off"), (True, "on")])
def test_the_ai_assistant_setting_reaches_the_session(setting, passed):
    variables = {"tool": dict(TOOL_VARS["tool"], **({} if setting is None else {"ai_assistant": setting}))}
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **variables)
    env = {e.get("name"): e.text for e in etree.fromstring(xml.encode()).iter("environment_variable")}
    assert env["GXNB_AI_ASSISTANT"] == passed, env


def test_notebook_tool_keeps_galaxy_europes_id_and_image_from_the_facts():
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **TOOL_VARS)
    root = etree.fromstring(xml.encode())
    assert root.get("id") == "interactive_tool_ml_jupyter_notebook"
    assert root.get("tool_type") == "interactive"
    assert root.findtext("requirements/container").strip() == "gxnb/jupyterlab-ai:test"
    assert root.findtext("entry_points/entry_point/port").strip() == "8888"


def test_git_mode_reaches_its_command_branch():
    """The original XML's git mode never matched its command branch: every select value must."""
    xml = render_template(TOOLS_DIR / "interactive" / "interactivetool_ml_jupyter_notebook.xml.j2", **TOOL_VARS)
    root = etree.fromstring(xml.encode())
    command = root.findtext("command")
    for option in root.iter("option"):
        value = option.get("value")
        if value != "fresh":
            assert f"== '{value}'" in command, f"mode {value!r} has no branch in the command"


@pytest.mark.parametrize("gpu_count", [0, 2])
def test_tpv_lint(tmp_path, gpu_count):
    config_dir = render_tpv(tmp_path, gpu_count, gpu_role="gpu-users")
    for name in ("destinations.yml", "tools.yml"):
        code, output = tpv("lint", config_dir / "tpv" / name)
        assert code == 0, output


def test_tpv_lint_catches_a_broken_rule(tmp_path):
    """The lint step can fail: a rule that is not valid Python is reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text("tools:\n  default:\n    cores: 1\n  broken_tool:\n    cores: abc(\n")
    code, _output = tpv("lint", broken)
    assert code == 1
