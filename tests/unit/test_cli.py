"""The ``translate`` command: every subcommand listed, each Hydra command's help built from its conf/ file (keys,
defaults, comments: never written twice), usage for a bare command, one line with the closest name for a
mistyped command, group or option, and the short forms written out for Hydra."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translate.apps.cli import COMMANDS, Command, expanded, main
from translate.config.describe import command_config, groups, settings_of
from translate.core.arguments import Arguments, Setting, one_line, parse_arguments
from translate.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
HYDRA_COMMANDS = [name for name, command in COMMANDS.items() if command.config]


def test_translate_help_lists_every_command_with_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, command in COMMANDS.items():
        assert f"  {name}" in out and command.about in out
    assert main([]) == 2 and "usage: translate COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("name", HYDRA_COMMANDS)
def test_a_commands_help_shows_its_own_settings_from_its_conf_file(name, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    settings = [s for s in settings_of(command_config(COMMANDS[name].config)) if s.default]
    assert settings and all(f"{s.key}={s.default}" in out for s in settings)
    # the yaml comments (cut to the line, at a word), not a second copy
    assert all(one_line(s.about, 60).removesuffix(" …") in out for s in settings if s.about)
    if name != "train":
        assert "hparams_search" not in out and len(out.splitlines()) < 80  # not the training groups
    else:
        assert all(f"  {group}: " in out for group in groups())


def test_the_help_of_a_training_group_and_its_mistakes(capsys):
    assert main(["train", "--help", "trainer"]) == 0
    assert "max_epochs=200" in capsys.readouterr().out
    assert main(["train", "--help", "model=cyclegan"]) == 0
    assert "model.lambda_A=" in capsys.readouterr().out
    assert main(["train", "--help", "recipe"]) == 0  # an optional group: off unless chosen
    assert capsys.readouterr().out.startswith("recipe: off by default; options: small_paired, small_unpaired")
    assert main(["train", "--help", "recipe=small_paired"]) == 0  # a preset shows the options it picks
    assert "  augment=diffaugment\n  gan_loss=lsgan" in capsys.readouterr().out
    assert main(["train", "--help", "modle"]) == 2
    assert capsys.readouterr().err.strip() == "translate train --help: no group 'modle' (did you mean model?)"


@pytest.mark.parametrize("name", [n for n in HYDRA_COMMANDS if n != "train"])
def test_a_bare_command_prints_its_usage(name, capsys):
    assert main([name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].endswith("missing") and err[1].startswith(f"usage: translate {name} ")


def test_mistyped_names_are_one_line_with_the_closest(capsys):
    assert main(["train", "model=cyclegn"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("model=cyclegn: no such option (did you mean cyclegan?)") and "\n" not in err
    assert main(["trian"]) == 2
    assert capsys.readouterr().err.strip() == "translate: no command 'trian' (did you mean train?); translate --help lists them"


def test_short_forms_are_written_out_for_hydra():
    infer = COMMANDS["infer"]
    assert expanded(infer, ["guard=runs/ae", "guard.action=skip", "edit.smile=1.5", "resize=64"]) == [
        "guard.checkpoint=runs/ae", "guard.action=skip", "+edit.smile=1.5", "resize=64"]
    assert expanded(infer, ["guard={checkpoint: x}"]) == ["guard={checkpoint: x}"]  # a whole node stays one
    # a category's axis (hair_colour=black): the class as one more key, a syntax Hydra parses
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (edit,) = expanded(COMMANDS["generate"], ["edit.hair_colour.black=2"])
    parsed = OverridesParser.create().parse_overrides([edit])[0]
    assert (parsed.key_or_group, parsed.value()) == ("edit.hair_colour.black", 2)
    assert expanded(COMMANDS["export"], ["guard=x"]) == ["guard=x"]  # export has no guard: Hydra names the key


def test_the_console_command_and_the_script_aliases_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "translate", "--help"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert proc.returncode == 0 and "  datasets" in proc.stdout
    proc = subprocess.run([sys.executable, str(ROOT / "infer.py")], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("usage: translate infer checkpoint=... input=... output=...")
    assert "translate.apps.cli:main" in (ROOT / "pyproject.toml").read_text()


def test_a_command_without_hydra_parses_its_own_arguments(capsys):
    assert isinstance(COMMANDS["datasets"], Command) and COMMANDS["datasets"].config is None
    assert main(["pretrained", "list"]) == 0
    assert "facades" in capsys.readouterr().out


def test_the_run_folder_is_named_for_what_runs():
    from translate.apps.train import run_name

    assert run_name([], "demo", "pix2pix", "demo_sketch2photo") == "demo"  # python train.py: the demo
    assert run_name(["experiment=facades"], "facades", "pix2pix", "aligned") == "facades"
    assert run_name(["model=cyclegan", "data=unaligned"], "demo", "cyclegan", "unaligned") == "cyclegan_unaligned"
    assert run_name(["+model=cyclegan"], "demo", "cyclegan", "demo_sketch2photo") == "cyclegan_demo_sketch2photo"
    assert run_name(["experiment=demo", "model=cyclegan"], "demo", "cyclegan", "x") == "demo"
    assert "${run_name:${hydra:overrides.task}," in (ROOT / "conf" / "train.yaml").read_text()


def test_warnings_are_one_line_without_their_source():
    import warnings

    from translate.apps.cli import one_line_warning

    text = one_line_warning(UserWarning("guard=run: 6 val scores place the 99th percentile\nmore"), UserWarning,
                            "/x/guard.py", 197, "warnings.warn(...)")
    assert text == "warning: guard=run: 6 val scores place the 99th percentile\n"
    with warnings.catch_warnings():
        main(["--help"])
        assert warnings.formatwarning is one_line_warning


@pytest.mark.parametrize("name", [n for n, c in COMMANDS.items() if c.config is None])
def test_every_other_command_answers_help_with_its_usage(name, capsys):
    with pytest.raises(SystemExit) as done:  # argparse commands exit themselves
        raise SystemExit(main([name, "--help"]))
    assert done.value.code == 0
    assert f"translate {name}" in capsys.readouterr().out



# ------------------------------------------------------------------------------ the non-Hydra commands' arguments
SPEC = Arguments("translate tool", ("src", "out?"), {
    "size": Setting(256, "a side"), "sigma": Setting(1.0, "a width"), "force": Setting(False, "again"),
    "style": Setting("canny", "how", ("canny", "xdog")), "ratios": Setting([0.8, 0.1, 0.1], "fractions"),
    "keys": Setting(None, "names", kind=list)})


@given(size=st.integers(-10**6, 10**6), sigma=st.floats(allow_nan=False, allow_infinity=False), force=st.booleans(),
       ratios=st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_settings_read_back_what_was_written(size, sigma, force, ratios):
    argv = ["photos", f"size={size}", f"sigma={sigma!r}", f"force={str(force).lower()}",
            f"ratios=[{','.join(map(repr, ratios))}]"]
    args = parse_arguments(argv, SPEC)
    assert (args["src"], args["out"], args["size"], args["force"]) == ("photos", None, size, force)
    assert args["sigma"] == sigma and args["ratios"] == ratios and args["style"] == "canny"


@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=12), max_size=5))
def test_any_command_line_is_read_or_refused_in_one_line(argv):
    try:
        parse_arguments(argv, SPEC)
    except ConfigError as e:
        assert str(e).splitlines()[0] and len(str(e).splitlines()) <= 2  # the reason (and the usage line)


def test_flags_unknown_keys_and_bad_values_are_named():
    for argv, message in [(["a", "--size", "3"], "--size: settings are key=value (size=...)"),
                          (["a", "sise=3"], "sise: not a setting of translate tool (did you mean size?)"),
                          (["a", "size=big"], "size=big: a whole number"), (["a", "force=maybe"], "true or false"),
                          (["a", "style=pen"], "style=pen: one of canny, xdog"), ([], "SRC missing"),
                          (["a", "b", "c"], "unexpected 'c'"), (["a", "ratios=[1,2]"], "3 values")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_arguments(argv, SPEC)
    assert parse_arguments(["a", "keys=[val/ssim, val/psnr,loss/G]"], SPEC)["keys"] == ["val/ssim", "val/psnr", "loss/G"]


def test_a_comment_continued_under_its_key_belongs_to_it(tmp_path):
    conf = tmp_path / "x.yaml"
    conf.write_text("# the file\nfirst: 1     # starts here,\n             # and goes on\nsecond: 2\n# above third\n"
                    "third: 3\nfourth: 4    # own\n# a block for fifth, not fourth's\nfifth: 5\n")
    about = {s.key: s.about for s in settings_of(conf)}
    assert about == {"first": "starts here, and goes on", "second": "", "third": "above third", "fourth": "own",
                     "fifth": "a block for fifth, not fourth's"}


def test_help_piped_into_a_closed_reader_ends_quietly():
    run = subprocess.run(f"{sys.executable} -m translate infer --help | head -1", shell=True, capture_output=True,
                         text=True, check=False)
    assert run.stdout.startswith("translate infer:") and "Traceback" not in run.stderr
