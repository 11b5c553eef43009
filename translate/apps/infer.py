"""``translate infer`` (and ``python infer.py``): batch conversion under Hydra."""

from __future__ import annotations

from translate.config.compose import exit_with_code, hydra_command
from translate.inference.convert import run


def main() -> None:
    """Hydra reads the ``key=value`` overrides from ``sys.argv``; the exit code is the conversion's."""
    hydra_command("infer", run, exit_with_code)
