"""``translate``: one command with a subcommand for everything a user runs.

The Hydra subcommands (train, infer, serve, generate, axes, evaluate, export) take ``key=value`` overrides;
``translate X --help`` lists X's own settings with their defaults and the comments of ``conf/X.yaml`` (the file the
configuration reference shows). The others take positional arguments, then ``key=value`` settings
(``translate.core.arguments``; ``translate X --help`` lists them). ``python train.py``
and ``python infer.py`` are aliases of ``translate train`` and ``translate infer``."""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import warnings
from dataclasses import dataclass

from translate.config.describe import command_config, defaults_of, groups, required, settings_of, summary
from translate.core.arguments import LINE, one_line
from translate.core.errors import ConfigError, first_line


@dataclass(frozen=True)
class Command:
    module: str  # whose main() runs it
    about: str  # one line for translate --help
    config: str | None = None  # conf/<config>.yaml for a Hydra command; None: main(argv) parses its own arguments


COMMANDS = {
    "train": Command("translate.apps.train", "train a model family: the sketch->photo demo, a preset, or groups "
                     "and keys", "train"),
    "infer": Command("translate.apps.infer", "convert images, folders, globs or file lists with a generator", "infer"),
    "serve": Command("translate.apps.serve", "the page: draw or upload, and translate in the browser", "serve"),
    "generate": Command("translate.latent.generate", "images from a noise generator: grids, mixing, walks, edits",
                        "generate"),
    "axes": Command("translate.apps.axes", "TL-GAN attribute axes of a generator's latent or style space", "axes"),
    "evaluate": Command("translate.evaluation.evaluate", "a generator's metrics on a dataset split", "evaluate"),
    "export": Command("translate.inference.export", "ONNX, TorchScript or a model folder (translate.load)", "export"),
    "guard": Command("translate.inference.guard", "score images by how unlike a guard's training images they are"),
    "datasets": Command("translate.data.__main__", "download, sketch, check, combine, separate or split datasets"),
    "pretrained": Command("translate.loading.pretrained", "list or download the reference pretrained models"),
    "bench": Command("translate.apps.bench.cli", "speed and memory of conversion, training steps and the page"),
    "plot": Command("translate.training.plot", "a run's metrics over steps as a PNG"),
    "codes": Command("translate.latent.plot", "an autoencoder's codes of its val images in 2-D"),
}
HELP = ("-h", "--help")
# key=value short forms: `guard=RUN` stands for guard.checkpoint=RUN, so guard.action=skip can stand beside it.
SHORT_FORMS = {"guard": "checkpoint"}


def main(argv: list[str] | None = None) -> int:
    try:
        return run_command(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # `translate X --help | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def run_command(argv: list[str]) -> int:
    warnings.formatwarning = one_line_warning
    if not argv or argv[0] in HELP:
        print(overview(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"translate: no command {name!r}{did_you_mean(name, COMMANDS)}; translate --help lists them",
              file=sys.stderr)
        return 2
    command = COMMANDS[name]
    if command.config is None:
        return int(importlib.import_module(command.module).main(rest) or 0)
    if rest[:1] and rest[0] in HELP:
        try:
            print(command_help(name, command, rest[1:]))
        except ConfigError as e:
            print(e, file=sys.stderr)
            return 2
        return 0
    problem = check_overrides(name, command, rest)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    sys.argv = [f"translate {name}", *expanded(command, rest)]  # Hydra reads its overrides from sys.argv
    importlib.import_module(command.module).main()
    return 0


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as the commands show it: one line, without the source file and line that raised it."""
    return f"warning: {first_line(message)}\n"


def overview() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: translate COMMAND [key=value ...]      translate COMMAND --help: its settings", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {command.about}" for name, command in COMMANDS.items()]
    return "\n".join(lines)


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]}?)" if close else ""


# ------------------------------------------------------------------------------------------------- Hydra commands
def command_help(name: str, command: Command, topic: list[str]) -> str:
    """A Hydra command's own settings, each with its default and one line from its conf/ file; ``train --help
    GROUP`` shows the settings of the group's default or named option."""
    if topic:
        return group_help(name, topic[0])
    path = command_config(command.config)
    lines = [f"translate {name}: {summary(path)}", usage(name, command), ""]
    if name == "train":
        lines += ["groups (group=option; translate train --help GROUP shows an option's settings):"]
        lines += [f"  {group}: {', '.join(options)}" for group, options in groups().items()] + [""]
    return "\n".join([*lines, "settings (key=default  what it does):", *rows(path)])


def rows(path) -> list[str]:
    """One line per setting of a conf/ file: key=default, aligned, then its description (shortened to the line)."""
    shown = [s for s in settings_of(path) if s.default]
    width = min(max((len(s.key) + len(s.default) + 1 for s in shown), default=0), 40)
    return [f"  {f'{s.key}={s.default}':<{width}}  {one_line(s.about, LINE - width - 4)}".rstrip() for s in shown]


def group_help(name: str, topic: str) -> str:
    group, _, option = topic.partition("=")
    options = groups()
    if name != "train" or group not in options:
        raise ConfigError(f"translate {name} --help: no group {group!r}{did_you_mean(group, options)}")
    option = option or defaults_of(command_config("train")).get(group)
    if option is None:  # an optional group (recipe, debug): nothing chosen unless asked for
        return (f"{group}: off by default; options: {', '.join(options[group])} (translate {name} --help "
                f"{group}=OPTION shows one)")
    if option not in options[group]:
        raise ConfigError(f"{group}={option}: no such option{did_you_mean(option, options[group])}")
    path = command_config(f"{group}/{option}")
    picks = [f"  {g}={o}" for g, o in defaults_of(path).items()]  # the group options a preset picks
    return "\n".join([f"{group}={option}: {summary(path)}", "", *picks, *rows(path)])


def usage(name: str, command: Command) -> str:
    needed = " ".join(f"{key}=..." for key in required(command_config(command.config)))
    return f"usage: translate {name} {needed + ' ' if needed else ''}[key=value ...]"


def check_overrides(name: str, command: Command, args: list[str]) -> str | None:
    """One line for what Hydra would answer at length: a required key missing, a group option that does not
    exist (with the closest one)."""
    given = {a.lstrip("+~").partition("=")[0] for a in args if "=" in a}
    path = command_config(command.config)
    missing = [key for key in required(path) if key not in given]
    if missing and not any(a.startswith("-") for a in args):
        return f"translate {name}: {', '.join(k + '=' for k in missing)} missing\n{usage(name, command)}"
    options = groups() if name == "train" else {}
    for arg in args:
        group, _, option = arg.lstrip("+").partition("=")
        if group in options and option not in (*options[group], "null") and "," not in option:
            return (f"{group}={option}: no such option{did_you_mean(option, options[group])} "
                    f"(options: {', '.join(options[group])})")
    return None


def expanded(command: Command, args: list[str]) -> list[str]:
    """The overrides Hydra is given: short forms written out (``guard=RUN`` -> ``guard.checkpoint=RUN``) and
    ``edit.NAME=k`` added as ``+edit.NAME=k`` (the axes' names are not known in advance)."""
    keys = {s.key for s in settings_of(command_config(command.config))}
    out = []
    for arg in args:
        key, _, value = arg.partition("=")
        if key in SHORT_FORMS and f"{key}.{SHORT_FORMS[key]}" in keys and not value.startswith("{"):
            arg = f"{key}.{SHORT_FORMS[key]}={value}"
        elif key.startswith("edit.") and "edit" in keys:
            arg = "+" + arg
        out.append(arg)
    return out
