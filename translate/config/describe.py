"""What a command's settings are, read from its ``conf/`` file: each key with its default and the comment beside
it. The command-line help shows these, the configuration reference shows the files: one source, never written
twice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from translate.config.stored import CONF_DIR

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<value>[^#]*?)\s*(?:#\s?(?P<comment>.*))?$")
SKIPPED = ("defaults", "hydra")  # composition and Hydra's own settings: not the command's options


@dataclass(frozen=True)
class Setting:
    key: str  # dotted: guard.action
    default: str  # as the file writes it ("" for a mapping)
    about: str  # its comment, continuation lines joined ("" when it has none)


def settings_of(path: Path) -> list[Setting]:
    """Every key of a config file, nested keys dotted, with its default and its description: the comment on its
    line with the comment lines aligned under it, else the first line of the comment block right above it."""
    found, parents, above, column = [], [], [], None
    lines = path.read_text().splitlines()
    header = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    for line in lines[header:]:  # the header comment describes the file (``summary``), not its first key
        if line.strip().startswith("#"):
            text = line.strip().lstrip("#").strip()
            if column is not None and line.index("#") >= column and found:  # the comment above goes on
                found[-1] = Setting(found[-1].key, found[-1].default, f"{found[-1].about} {text}".strip())
            else:
                above.append(text)
                column = None
            continue
        match = _KEY.match(line)
        column = None
        if not match:
            above = [] if not line.strip() else above
            continue
        depth = len(match["indent"]) // 2
        parents = parents[:depth] + [match["key"]]
        if parents[0] not in SKIPPED:
            about = match["comment"] or (above[0] if above else "")
            found.append(Setting(".".join(parents), match["value"].strip(), about.strip()))
            column = line.index("#") if match["comment"] is not None else None
        above = []
    return found


def required(path: Path) -> list[str]:
    """The keys a command needs on its command line (``???`` in its file)."""
    return [s.key for s in settings_of(path) if s.default == "???"]


def summary(path: Path) -> str:
    """The file's first comment line: what the command does and its usage."""
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            return ""
        if not line.startswith("# @package"):
            return line.lstrip("#").strip()
    return ""


def defaults_of(path: Path) -> dict[str, str | None]:
    """Group -> the option a file's defaults list picks (``group: option``, or a preset's ``override /group:
    option``), in the file's order; None for an optional group left off (``recipe: null``)."""
    entries = OmegaConf.to_container(OmegaConf.load(path)).get("defaults") or []
    return {key.removeprefix("override").strip().lstrip("/"): value
            for entry in entries if isinstance(entry, dict) for key, value in entry.items()}


def groups() -> dict[str, list[str]]:
    """Config group -> its options (``conf/<group>/<option>.yaml``), for ``group=option`` choices."""
    return {group.name: sorted(p.relative_to(group).with_suffix("").as_posix() for p in group.rglob("*.yaml"))
            for group in sorted(CONF_DIR.iterdir()) if group.is_dir() and group.name != "hydra"}


def command_config(name: str) -> Path:
    return CONF_DIR / f"{name}.yaml"
