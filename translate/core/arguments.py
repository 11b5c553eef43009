"""The command line of the ``translate`` subcommands that are not Hydra apps (datasets, pretrained, guard, plot,
codes, bench): positional arguments where they read naturally, then ``key=value`` settings, as the Hydra commands
take them. ``translate X --help`` lists each setting with its default and one line; an unknown key, a flag
(``--key``), a bad value or a missing argument is one line (a ``ConfigError``) naming it, with the closest key.

    SETTINGS = {"root": Setting("datasets", "where datasets live"), "force": Setting(False, "download again")}
    args = parse_arguments(argv, Arguments("translate datasets download", ("name",), SETTINGS))
"""

from __future__ import annotations

import difflib
import textwrap
from dataclasses import dataclass, field
from typing import Any

from translate.core.errors import ConfigError

TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
MISSING = "???"  # the default of a setting that must be given (as in conf/*.yaml)
LINE = 120  # the width help lines are cut to


@dataclass(frozen=True)
class Setting:
    """One ``key=value`` setting: its default (whose type the value takes; ``kind`` for a default of None or a
    list), one line of help, and the values it allows when it is a choice."""

    default: Any
    about: str
    choices: tuple[str, ...] = ()
    kind: type | None = None  # the value's type (each item's, for a list default; list: any number of strings)


@dataclass(frozen=True)
class Arguments:
    """A command's line: its name (``translate datasets check``), positional arguments (a trailing ``?`` marks
    one that may be left out), settings and what it does."""

    command: str
    positional: tuple[str, ...] = ()
    settings: dict[str, Setting] = field(default_factory=dict)
    about: str = ""

    def usage(self) -> str:
        names = [f"[{p[:-1].upper()}]" if p.endswith("?") else p.upper() for p in self.positional]
        names += [f"{k}=..." for k, s in self.settings.items() if s.default == MISSING]
        return f"usage: {' '.join([self.command, *names])}" + (" [key=value ...]" if self.settings else "")

    def help(self) -> str:
        lines = [f"{self.command}: {self.about}" if self.about else self.command, self.usage()]
        if self.settings:
            shown = {k: f"{k}={_shown(s.default)}" for k, s in self.settings.items()}
            width = min(max(map(len, shown.values())), 36)
            lines += ["", "settings (key=default  what it does):"]
            lines += [f"  {shown[k]:<{width}}  {one_line(_about(s), LINE - width - 4)}" for k, s in self.settings.items()]
        return "\n".join(lines)


def parse_arguments(argv: list[str], spec: Arguments) -> dict[str, Any]:
    """The positional arguments and settings of ``argv`` by name, every setting filled with its default."""
    positional = [a for a in argv if "=" not in a]
    flags = [a for a in positional if a.startswith("-")]
    if flags:
        key = flags[0].lstrip("-").partition("=")[0]
        raise ConfigError(f"{flags[0]}: settings are key=value ({key}=...); {spec.command} --help lists them")
    needed = [p for p in spec.positional if not p.endswith("?")]
    if len(positional) < len(needed):
        names = " ".join(p.upper() for p in needed[len(positional):])
        raise ConfigError(f"{spec.command}: {names} missing\n{spec.usage()}")
    if len(positional) > len(spec.positional):
        extra = positional[len(spec.positional)]
        raise ConfigError(f"{spec.command}: unexpected {extra!r} (settings are key=value)\n{spec.usage()}")
    values: dict[str, Any] = {p.rstrip("?"): None for p in spec.positional}
    values.update(zip((p.rstrip("?") for p in spec.positional), positional))
    values.update({k: s.default for k, s in spec.settings.items()})
    for arg in (a for a in argv if "=" in a):
        key, _, text = arg.partition("=")
        if key not in spec.settings:
            close = difflib.get_close_matches(key, list(spec.settings), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{key}: not a setting of {spec.command}{hint}; {spec.command} --help lists them")
        values[key] = _value(key, text, spec.settings[key])
    missing = [k for k, v in values.items() if v == MISSING]
    if missing:
        raise ConfigError(f"{spec.command}: {', '.join(k + '=' for k in missing)} missing\n{spec.usage()}")
    return values


def _value(key: str, text: str, setting: Setting) -> Any:
    """``text`` as the setting's type; a ConfigError naming ``key=text`` otherwise."""
    if text.lower() in ("null", "none") and setting.default is None:
        return None
    kind = setting.kind or type(setting.default)
    items = [t.strip() for t in text.strip().removeprefix("[").removesuffix("]").split(",") if t.strip()]
    if setting.kind is list:  # any number of strings: keys=[val/ssim,val/psnr]
        return items
    if isinstance(setting.default, (list, tuple)):
        if len(items) != len(setting.default):
            raise ConfigError(f"{key}={text}: {len(setting.default)} values, e.g. {key}={_shown(setting.default)}")
        return [_typed(key, item, setting.kind or type(setting.default[0])) for item in items]
    value = _typed(key, text, kind)
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{key}={text}: one of {', '.join(setting.choices)}")
    return value


def _typed(key: str, text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() not in TRUE + FALSE:
            raise ConfigError(f"{key}={text}: true or false")
        return text.lower() in TRUE
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"{key}={text}: {'a whole number' if kind is int else 'a number'}") from None
    return text


def _shown(default: Any) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (list, tuple)):
        return "[" + ",".join(map(str, default)) + "]"
    return "null" if default is None else str(default)


def _about(setting: Setting) -> str:
    return setting.about + (f" ({' | '.join(setting.choices)})" if setting.choices else "")


def one_line(text: str, width: int) -> str:
    """``text`` cut at a word to ``width`` characters (20 at least), with an ellipsis when cut: a help line."""
    return textwrap.shorten(text, max(width, 20), placeholder=" …") if text else ""
