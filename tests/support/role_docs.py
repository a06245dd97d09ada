#!/usr/bin/env python3
"""The inputs section of each role's README, made from its meta/argument_specs.yml and defaults.

    python tests/support/role_docs.py --write [ROLE ...]   rewrite the generated section
    python tests/support/role_docs.py --check              exit 1 where a README is out of step

The section sits between the BEGIN/END markers below; the rest of the README is written by hand.
tests/lint/test_role_docs.py keeps every README in step and every option described.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
BEGIN = "<!-- BEGIN INPUTS: generated from meta/argument_specs.yml by tests/support/role_docs.py --write -->"
END = "<!-- END INPUTS -->"


def argument_specs(role: pathlib.Path) -> dict:
    return yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def defaults(role: pathlib.Path) -> dict:
    path = role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def undescribed(role: pathlib.Path) -> list[str]:
    """Options of any entry point without a description."""
    missing = []
    for entry_point, spec in argument_specs(role).items():
        for name, option in (spec.get("options") or {}).items():
            text = option.get("description")
            text = " ".join(text) if isinstance(text, list) else (text or "")
            if not text.strip():
                missing.append(f"{entry_point}: {name}")
    return missing


def cell(value) -> str:
    text = " ".join(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else value
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def default_cell(name: str, option: dict, role_defaults: dict) -> str:
    if option.get("required"):
        return "required"
    if name not in role_defaults:
        return "—"
    value = role_defaults[name]
    if option.get("no_log"):
        return "(secret)"
    shown = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
    return f"`{cell(shown)}`" if shown else "`''`"


def options_table(options: dict, role_defaults: dict) -> list[str]:
    lines = ["| name | type | default | description |", "| --- | --- | --- | --- |"]
    for name, option in options.items():
        kind = option.get("type", "str")
        if option.get("elements"):
            kind += f" of {option['elements']}"
        if option.get("choices"):
            kind += ": " + ", ".join(f"`{c}`" for c in option["choices"])
        lines.append(f"| `{name}` | {kind} | {default_cell(name, option, role_defaults)} "
                     f"| {cell(option.get('description', ''))} |")
    return lines


def render(role: pathlib.Path) -> str:
    specs = argument_specs(role)
    role_defaults = defaults(role)
    # Entry points that share one spec (YAML anchors) are listed together.
    groups: list[tuple[list[str], dict]] = []
    for entry_point, spec in specs.items():
        for names, shared in groups:
            if shared is spec:
                names.append(entry_point)
                break
        else:
            groups.append(([entry_point], spec))
    lines = [BEGIN, "## Inputs", ""]
    for names, spec in groups:
        entry = ", ".join(f"`{n}`" for n in names)
        title = "Entry point" + ("s" if len(names) > 1 else "")
        lines += [f"### {title} {entry}: {cell(spec.get('short_description', ''))}", ""]
        for paragraph in spec.get("description") or []:
            lines += [cell(paragraph), ""]
        lines += options_table(spec.get("options") or {}, role_defaults) + [""]
    lines.append(END)
    return "\n".join(lines)


def updated(readme_text: str, section: str) -> str:
    if BEGIN in readme_text and END in readme_text:
        head, rest = readme_text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + section + tail
    return readme_text.rstrip("\n") + "\n\n" + section + "\n"


def roles(names: list[str]) -> list[pathlib.Path]:
    if names:
        return [ROLES / n for n in names]
    return sorted(p.parent.parent for p in ROLES.glob("*/meta/argument_specs.yml"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("roles", nargs="*")
    args = parser.parse_args()
    stale = []
    for role in roles(args.roles):
        readme = role / "README.md"
        current = readme.read_text() if readme.exists() else f"# {role.name}\n"
        wanted = updated(current, render(role))
        if wanted != current:
            if args.write:
                readme.write_text(wanted)
                print(f"wrote {readme.relative_to(REPO)}")
            else:
                stale.append(role.name)
    if stale:
        print("out of step with meta/argument_specs.yml: " + ", ".join(stale), file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
