"""mkdocs hook: ``reference/configuration.md`` generated from ``conf/`` at every build, so the reference lists
every config group and option as the files define them (with their comments), and cannot fall behind."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

CONF = Path(__file__).resolve().parents[2] / "conf"
PAGE = "reference/configuration.md"


def _intro() -> str:
    return ("# Configuration reference\n\nGenerated from `conf/` when the site is built: each command's config, then "
            "every config group with each of its options as its file defines it. Choose an option with "
            "`group=option` (`model=cyclegan`), set a key with `key=value` (`trainer.max_steps=5000`); "
            "`experiment=NAME` applies a preset. A key that no option sets is refused, naming the closest.\n")


def _block(path: Path) -> str:
    return f"```yaml\n{path.read_text().rstrip()}\n```\n"


def reference() -> str:
    parts = [_intro(), "## Commands\n"]
    for path in sorted(CONF.glob("*.yaml")):
        parts += [f"### `{path.stem}`\n", _block(path)]
    for group in sorted(p for p in CONF.iterdir() if p.is_dir() and p.name != "hydra"):
        options = sorted(group.rglob("*.yaml"))
        names = ", ".join(f"`{p.relative_to(group).with_suffix('').as_posix()}`" for p in options)
        parts += [f"## `{group.name}`\n", f"Options: {names}.\n"]
        for path in options:
            parts += [f"### `{group.name}={path.relative_to(group).with_suffix('').as_posix()}`\n", _block(path)]
    return "\n".join(parts)


def on_files(files, config):
    files.append(File.generated(config, PAGE, content=reference()))
    return files
