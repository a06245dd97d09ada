"""Terraform module docs lint: every module under terraform/modules has a README.md whose "Inputs" table
(| name | type | default | description |) lists exactly the variables of its .tf files and whose "Outputs"
table (| name | description |) lists exactly its outputs, and every variable and output has a description.
Parses HCL with python-hcl2 (no terraform binary needed)."""

from __future__ import annotations

import pathlib
import re

import hcl2
import pytest

from tests.conftest import REPO

MODULES_DIR = REPO / "terraform" / "modules"
INPUTS_HEADER = ["name", "type", "default", "description"]
OUTPUTS_HEADER = ["name", "description"]


def modules() -> list[str]:
    return sorted(p.name for p in MODULES_DIR.iterdir() if p.is_dir() and any(p.glob("*.tf")))


def unquote(value):
    """python-hcl2 8 keeps HCL's quotes on names and strings."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(module: pathlib.Path, kind: str) -> dict[str, dict]:
    """variable or output blocks of every .tf file of the module, by name."""
    found: dict[str, dict] = {}
    for tf_file in sorted(module.glob("*.tf")):
        with tf_file.open() as fh:
            doc = hcl2.load(fh)
        for block in doc.get(kind, []):
            for name, body in block.items():
                found[unquote(name)] = body
    return found


def cells(line: str) -> list[str]:
    """Cells of a markdown table row; an escaped pipe (\\|) stays inside its cell."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def table(readme: str, heading: str) -> tuple[list[str], list[list[str]]] | None:
    """Header and rows of the first table under the heading named `heading` (any level), or None."""
    lines = readme.splitlines()
    start = next((i for i, line in enumerate(lines) if re.fullmatch(rf"#+\s+{heading}\s*", line.strip())), None)
    if start is None:
        return None
    rows: list[str] = []
    for line in lines[start + 1:]:
        if line.lstrip().startswith("#"):
            break
        if line.lstrip().startswith("|"):
            rows.append(line)
        elif rows:
            break
    if len(rows) < 2:
        return None
    header, separator, *body = (cells(r) for r in rows)
    if not all(re.fullmatch(r":?-{3,}:?", c) for c in separator):
        return None
    return [h.lower() for h in header], body


def documented(name_cell: str) -> str:
    return name_cell.strip().strip("`").strip()


def check_table(readme: str, heading: str, header: list[str], defined: dict[str, dict], kind: str) -> list[str]:
    found = table(readme, heading)
    if found is None:
        return [f'README has no "{heading}" table']
    got_header, rows = found
    if got_header != header:
        return [f'"{heading}" table columns are {got_header}, not {header}']
    problems = []
    names = [documented(r[0]) for r in rows]
    problems += [f"{kind} {n!r} is listed twice in {heading}" for n in sorted({n for n in names if names.count(n) > 1})]
    problems += [f"{kind} {n!r} is missing from the {heading} table" for n in sorted(set(defined) - set(names))]
    problems += [f"{heading} lists {kind} {n!r}, which the module no longer has"
                 for n in sorted(set(names) - set(defined))]
    problems += [f"{kind} {documented(r[0])!r}: {heading} row has {len(r)} cells, not {len(header)}"
                 for r in rows if len(r) != len(header)]
    problems += [f"{kind} {documented(r[0])!r}: empty description in the {heading} table"
                 for r in rows if len(r) == len(header) and not r[-1].strip()]
    return problems


def problems_of(module: pathlib.Path) -> list[str]:
    variables, outputs = blocks(module, "variable"), blocks(module, "output")
    problems = [f"{kind} {name!r} has no description in the .tf file"
                for kind, defined in (("variable", variables), ("output", outputs))
                for name, body in sorted(defined.items())
                if not isinstance(unquote(body.get("description")), str) or not unquote(body["description"]).strip()]
    readme = module / "README.md"
    if not readme.is_file():
        return [*problems, "no README.md"]
    text = readme.read_text()
    problems += check_table(text, "Inputs", INPUTS_HEADER, variables, "variable")
    problems += check_table(text, "Outputs", OUTPUTS_HEADER, outputs, "output")
    return problems


def test_the_modules_are_found():
    assert {"gpu_nodes", "aws_gpu_nodes", "openstack_gpu_nodes", "inventory_file"} <= set(modules()), modules()


@pytest.mark.parametrize("module", modules())
def test_module_readme_documents_every_input_and_output(module):
    assert problems_of(MODULES_DIR / module) == []


# The lint itself, on a module made up here: each kind of drift is reported.

GOOD_TF = '''
variable "kept" {
  description = "Kept."
  type        = string
}
output "out" {
  description = "Out."
  value       = var.kept
}
'''
GOOD_README = """# m

## Inputs

| name | type | default | description |
| --- | --- | --- | --- |
| `kept` | `string` | required | Kept \\| with a pipe. |

## Outputs

| name | description |
| --- | --- |
| `out` | Out. |
"""


@pytest.fixture
def made_up_module(tmp_path) -> pathlib.Path:
    (tmp_path / "main.tf").write_text(GOOD_TF)
    (tmp_path / "README.md").write_text(GOOD_README)
    return tmp_path


def test_lint_passes_a_documented_module(made_up_module):
    assert problems_of(made_up_module) == []


@pytest.mark.parametrize(("tf_extra", "readme_edit", "expected"), [
    ('variable "added" {\n  description = "New."\n  type = number\n}\n', None,
     "variable 'added' is missing from the Inputs table"),
    ('output "added" {\n  description = "New."\n  value = 1\n}\n', None,
     "output 'added' is missing from the Outputs table"),
    ("", ("| `kept` |", "| `gone` | `string` | required | Gone. |\n| `kept` |"),
     "Inputs lists variable 'gone', which the module no longer has"),
    ("", ("| `out` | Out. |", "| `out` | Out. |\n| `old` | Old. |"),
     "Outputs lists output 'old', which the module no longer has"),
    ('variable "bare" {\n  type = string\n}\n', ("| `kept` |", "| `bare` | `string` | required | Bare. |\n| `kept` |"),
     "variable 'bare' has no description in the .tf file"),
    ('output "blank" {\n  description = " "\n  value = 1\n}\n', ("| `out` |", "| `blank` | Blank. |\n| `out` |"),
     "output 'blank' has no description in the .tf file"),
    ("", ("| name | type | default | description |", "| name | description |"),
     "\"Inputs\" table columns are ['name', 'description'], not ['name', 'type', 'default', 'description']"),
    ("", ("## Outputs", "## Results"), 'README has no "Outputs" table'),
])
def test_lint_reports_drift(made_up_module, tf_extra, readme_edit, expected):
    if tf_extra:
        (made_up_module / "extra.tf").write_text(tf_extra)
    if readme_edit:
        readme = made_up_module / "README.md"
        text = readme.read_text()
        assert readme_edit[0] in text
        readme.write_text(text.replace(readme_edit[0], readme_edit[1], 1))
    assert expected in problems_of(made_up_module)


def test_lint_reports_a_missing_readme(made_up_module):
    (made_up_module / "README.md").unlink()
    assert "no README.md" in problems_of(made_up_module)
