"""The idempotence check used by the test command reads Ansible's recap correctly."""

from __future__ import annotations

from tests.support import check_idempotent

CLEAN = """TASK [galaxy : Galaxy configuration (galaxy.yml)] ****
ok: [node]
PLAY RECAP ****
node                       : ok=69   changed=0    unreachable=0    failed=0    skipped=16   rescued=0    ignored=0
"""
CHANGED = """TASK [galaxy : Galaxy configuration (galaxy.yml)] ****
changed: [node]
PLAY RECAP ****
node                       : ok=69   changed=1    unreachable=0    failed=0    skipped=16   rescued=0    ignored=0
"""


def test_clean_second_run_passes(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(CLEAN)
    assert check_idempotent.main(str(log)) == 0


def test_changed_task_is_named_and_fails(tmp_path, capsys):
    log = tmp_path / "run.log"
    log.write_text(CHANGED)
    assert check_idempotent.main(str(log)) == 1
    assert "Galaxy configuration (galaxy.yml)" in capsys.readouterr().err


def test_missing_recap_fails(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("ERROR! something\n")
    assert check_idempotent.main(str(log)) == 1
