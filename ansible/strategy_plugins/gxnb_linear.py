"""Ansible's linear strategy, run through Mitogen where Mitogen is installed.

Mitogen keeps one Python interpreter per host and connection for the whole run and sends it
each module, instead of starting Python on the host for every task: a deploy that changes
nothing takes about half the time (docs/benchmarks.md). Mitogen redirects the `ssh` and
`docker` connections (the production and the local inventory); others run as usual.

Where Mitogen is missing this is Ansible's own linear strategy, with a warning. To run without
Mitogen where it is installed: ANSIBLE_STRATEGY=linear.
"""

from __future__ import annotations

DOCUMENTATION = """
    name: gxnb_linear
    short_description: Ansible's linear strategy through Mitogen when it is installed
    description:
        - Mitogen's linear strategy (one interpreter per host for the whole run).
        - Ansible's linear strategy, with a warning, where the mitogen package is missing.
    author: Galaxy GPU notebook service
"""

try:
    import ansible_mitogen.plugins.strategy.mitogen_linear as _mitogen_linear
except ImportError as error:
    from ansible.plugins.strategy.linear import StrategyModule as _Linear
    from ansible.utils.display import Display

    MITOGEN_MISSING = str(error)

    class StrategyModule(_Linear):
        def __init__(self, *args, **kwargs):
            Display().warning(
                f"Mitogen is not installed ({MITOGEN_MISSING}): Ansible's own linear strategy runs, a "
                "module at a time on each host (slower). scripts/host-setup.sh installs it into .venv."
            )
            super().__init__(*args, **kwargs)

else:
    MITOGEN_MISSING = None
    StrategyModule = _mitogen_linear.StrategyModule
