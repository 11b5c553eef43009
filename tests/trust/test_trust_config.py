"""A config stored in a checkpoint is untrusted (issue 28): no container hides a target, a target is built only
where this project puts one, its values are range-checked, and a stored path is never written to."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from helpers import write_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf, open_dict

from translate.config.compose import build_model, compose, resume_config, stored_config
from translate.config.stored import allowed_targets, check_rendering
from translate.core.errors import CheckpointError, ConfigError
from translate.loading.generator import load_generator
from translate.training.loop import fit

TINY = ["debug=fast", "logger=none", "trainer.progress_bar=false", "generator=unet_64", "data.load_size=64",
        "data.crop_size=64", "trainer.num_samples=0", "trainer.val_every=0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A two-step pix2pix run on tiny aligned folders (shared by this module's tests)."""
    root = tmp_path_factory.mktemp("data")
    for split, n in (("train", 2), ("val", 1)):
        for i in range(n):
            write_image(root / split / "A" / f"{i}.png", (64, 64), seed=20 * n + i)
            write_image(root / split / "B" / f"{i}.png", (64, 64), seed=100 + 20 * n + i)
    cfg = compose([*TINY, "data=aligned", f"data.root={root}", "trainer.max_steps=2"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path_factory.mktemp("run"))
    fit(cfg)
    return Path(cfg.run_dir)


@pytest.fixture(scope="module")
def stored(run) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


def _writer(marker: Path) -> dict:
    """The issue's payload: ``pathlib.Path(marker).write_text(...)`` when Hydra builds it."""
    return {"_target_": "pathlib.Path.write_text", "self": {"_target_": "pathlib.Path", "_args_": [str(marker)]},
            "data": "import os  # a .pth file runs this at the next Python start"}


def _with(stored: dict, tmp_path: Path, change) -> Path:
    hostile = {**stored, "config": copy.deepcopy(stored["config"])}
    change(hostile["config"])
    path = tmp_path / "hostile.pt"
    torch.save(hostile, path)
    return path


def _every_loader(path: Path):
    return (lambda: load_generator(path), lambda: resume_config(str(path), []))


# ------------------------------------------------------------------ item 1: every container, every position
def test_a_target_in_a_tuple_is_refused_by_every_loader(stored, tmp_path):
    marker = tmp_path / "evil.pth"
    path = _with(stored, tmp_path, lambda c: c["generator"].__setitem__("extra", (_writer(marker),)))
    for use in _every_loader(path):
        with pytest.raises(CheckpointError, match=r"generator\.extra\[0\]\._target_='pathlib\.Path\.write_text'"):
            use()
    assert not marker.exists()


def test_what_a_config_cannot_hold_is_refused(tmp_path):
    for value, message in (({"generator": {1: "x"}}, "not a string"), ({"generator": {"ngf": b"x"}}, "bytes"),
                           ({"generator": {"ngf": {3}}}, "set")):
        with pytest.raises(CheckpointError, match=message):
            stored_config(value, tmp_path / "x.pt")
    deep: dict = {}
    for _ in range(100):
        deep = {"a": deep}
    with pytest.raises(CheckpointError, match="deeper than"):
        stored_config({"generator": deep}, tmp_path / "x.pt")


KEYS = st.sampled_from(["extra", "norm", "_args_", "params", "x", "layers", "0"])
WRAPPERS = st.lists(st.tuples(st.sampled_from(["dict", "list", "tuple"]), KEYS, st.integers(0, 2)), max_size=5)
HOSTS = st.sampled_from(["", "generator", "discriminator", "model", "data", "optim.G", "trainer", "metrics"])


def _hide(node: dict, wrappers: list) -> object:
    """``node`` inside the given containers, outermost last (lists and tuples padded with harmless values)."""
    for kind, key, position in wrappers:
        if kind == "dict":
            node = {key: node}
        else:
            items = [0.5] * position + [node] + [None]
            node = items if kind == "list" else tuple(items)
    return node


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wrappers=WRAPPERS, host=HOSTS, key=KEYS, foreign=st.booleans())
def test_no_container_hides_a_target(stored, tmp_path, wrappers, host, key, foreign):
    """A foreign target (or a project one at a key where the project never puts it), hidden at any depth in
    any mix of mappings, lists and tuples under any key, is refused and nothing is built."""
    marker = tmp_path / "marker.pth"
    marker.unlink(missing_ok=True)
    node = _writer(marker) if foreign else {"_target_": "translate.data.demo.sketch2photo", "root": str(marker)}
    config = copy.deepcopy(stored["config"])
    holder = config
    for part in filter(None, host.split(".")):
        holder = holder.setdefault(part, {})
    holder[key] = _hide(node, wrappers)
    with pytest.raises(CheckpointError, match="refused"):
        cfg = stored_config(config, tmp_path / "x.pt")
        build_model(cfg)  # reached only if the check let it through: must not write the marker either
    assert not marker.exists()


# ------------------------------------------------------------------ item 4: targets only where the project puts them
def test_a_project_target_is_refused_where_the_project_never_puts_it(stored, tmp_path):
    written = tmp_path / "rendered"
    node = {"_target_": "translate.data.demo.sketch2photo", "root": str(written)}
    path = _with(stored, tmp_path, lambda c: c["generator"].__setitem__("norm", node))
    for use in _every_loader(path):
        with pytest.raises(CheckpointError, match="never builds at generator.norm"):
            use()
    assert not written.exists()
    assert "translate.data.demo.sketch2photo" in allowed_targets("data")
    assert allowed_targets("generator.norm") == frozenset()
    assert "torch.optim.SGD" in allowed_targets("optim.E")


def test_stored_values_are_range_checked_before_anything_is_built(stored, tmp_path):
    def demo(config):
        config["data"] = {"_target_": "translate.data.demo.sketch2photo", "root": None, "num_train": 1_000_000_000}
    path = _with(stored, tmp_path, demo)
    with pytest.raises(CheckpointError, match=r"data\.num_train=1000000000 is out of range"):
        resume_config(str(path), [])
    path = _with(stored, tmp_path, lambda c: c["generator"].__setitem__("ngf", -3))
    with pytest.raises(CheckpointError, match=r"generator\.ngf=-3"):
        load_generator(path)


def test_a_stored_path_is_never_rendered_into(stored, tmp_path):
    target = tmp_path / "somewhere"

    def demo(config):
        config["data"] = {"_target_": "translate.data.demo.sketch2photo", "root": str(target), "num_train": 2}
    path = _with(stored, tmp_path, demo)
    with pytest.raises(CheckpointError, match=r"data\.root=.*somewhere.*never written to"):
        resume_config(str(path), [])
    assert not target.exists()
    cfg = resume_config(str(path), [f"data.root={tmp_path / 'mine'}"])  # a path the user gives is theirs
    assert cfg.data.root == str(tmp_path / "mine")
    (target / "meta.json").parent.mkdir()
    (target / "meta.json").write_text("{}")  # already rendered: reading it writes nothing
    check_rendering(OmegaConf.create({"data": {"_target_": "translate.data.demo.sketch2photo", "root": str(target)}}),
                    "x")


def test_user_overrides_are_the_users_choice_and_fresh_runs_are_checked_too(stored, tmp_path):
    path = _with(stored, tmp_path, lambda c: c["generator"].__setitem__("ngf", -3))
    cfg = resume_config(str(path), ["generator.ngf=8"])
    assert cfg.generator.ngf == 8
    with pytest.raises(CheckpointError, match=r"data\.size=4 is out of range: expected an integer >= 8 and <= 512"):
        stored_config({"data": {"_target_": "translate.data.demo.sketch2photo", "size": 4}}, "x")
    with pytest.raises(ConfigError, match="data.num_val=0 is out of range"):
        fit(compose([*TINY, "data=demo_sketch2photo", "data.num_val=0"]))


# ------------------------------------------------------------------ item 9: a typo is never a silent setting
@pytest.mark.parametrize("override", ["+trainer.max_step=10", "++trainer.max_step=10"])
def test_an_added_unknown_key_is_refused_naming_the_closest(override):
    with pytest.raises(ConfigError, match=r"trainer\.max_step: no such setting \(did you mean trainer\.max_steps\?"):
        fit(compose([*TINY, override]))


def test_every_entry_point_refuses_unknown_keys_and_keeps_free_form_ones():
    from translate.config.compose import check_known_keys

    for name, good, bad in (("infer", "+edit.smile=2", "+style.sample=3"), ("generate", "+edit.age=1", "+trucation=0.7"),
                            ("evaluate", "split=val", "+data.crop=64")):
        check_known_keys(compose([good], config_name=name))
        with pytest.raises(ConfigError, match="no such setting"):
            check_known_keys(compose([bad], config_name=name))
    check_known_keys(compose(["+metrics.features._target_=translate.latent.attributes.PixelFeatures"]))


def test_a_resume_refuses_an_added_unknown_key(run):
    with pytest.raises(ConfigError, match="did you mean trainer.max_steps"):
        resume_config(str(run), ["+trainer.max_step=10"])
    assert resume_config(str(run), ["trainer.max_steps=4"]).trainer.max_steps == 4


def test_a_typo_on_the_command_line_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(Path(__file__).parents[2] / "train.py"), "+trainer.max_step=10",
                           "logger=none", f"run_dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: trainer.max_step: no such setting (did you mean")


# ------------------------------------------------------------------ item 8: optimizer settings
@pytest.mark.parametrize("override, message", [("optim.G.lr=-1", "out of range"), ("optim.G.lr=nan", "out of range"),
                                               ("optim.G.lr=[1]", "not allowed"), ("optim.D.betas=[0.5]", "2 values")])
def test_optimizer_settings_are_checked(override, message):
    with pytest.raises(ConfigError, match=rf"optim\.[GD]\.\w+.*{message}"):
        fit(compose([*TINY, override]))


# ------------------------------------------------------------------ item 8: incomplete checkpoints are one line
@pytest.mark.parametrize("remove, message", [("networks.G", "no weights for the generator G"),
                                             ("config.model", "no model section"), ("config.data", "no data section")])
def test_an_incomplete_checkpoint_is_one_line(stored, tmp_path, remove, message):
    hostile = copy.deepcopy(stored)
    field, key = remove.split(".")
    del hostile[field][key]
    torch.save(hostile, tmp_path / "incomplete.pt")
    with pytest.raises(CheckpointError, match=message):
        load_generator(tmp_path / "incomplete.pt")
    if field == "config":
        with pytest.raises(CheckpointError, match=message):
            resume_config(str(tmp_path / "incomplete.pt"), [])


def test_a_resume_names_the_group_that_changes_the_run():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from translate.config.compose import _check_group_choices

    stored = compose(["experiment=demo"])
    for order in (["experiment=demo", "model=cyclegan"], ["model=cyclegan", "experiment=demo"]):
        choices = OverridesParser.create().parse_overrides(order)
        with pytest.raises(ConfigError, match=r"^model=cyclegan: .*the run keeps model=pix2pix"):
            _check_group_choices(choices, stored, order, None)


@pytest.mark.parametrize("key, value", [("last_epoch", 99), ("_last_lr", [1e9]), ("base_lrs", "x")])
def test_a_tampered_schedule_is_refused_on_resume(stored, tmp_path, key, value):
    hostile = copy.deepcopy(stored)
    hostile["schedulers"]["G"][key] = value
    torch.save(hostile, tmp_path / "last.pt")
    cfg = resume_config(str(tmp_path / "last.pt"), [f"run_dir={tmp_path / 'resumed'}"])
    with pytest.raises(CheckpointError, match=r"schedulers\.G is not the schedule of this run at step 2"):
        fit(cfg)


def test_a_checkpoint_naming_a_moved_module_still_resumes(stored, tmp_path):
    old = copy.deepcopy(stored)
    old["config"]["logger"] = {"_target_": "translate.logging.NoLogger"}  # before translate/logging.py moved
    torch.save(old, tmp_path / "old.pt")
    assert resume_config(str(tmp_path / "old.pt"), []).logger._target_ == "translate.training.tracking.NoLogger"


def test_a_checkpoint_from_before_the_areas_still_resumes_and_loads(stored, tmp_path):
    """Targets written before the package was laid out by area (translate.losses, translate.schedulers,
    translate.tracking) name their new places, for resume and for loading the generator."""
    old = copy.deepcopy(stored)
    old["config"]["logger"] = {"_target_": "translate.tracking.NoLogger"}
    old["config"]["scheduler"]["_target_"] = old["config"]["scheduler"]["_target_"].replace(
        "translate.training.schedulers.", "translate.schedulers.")
    old["config"]["gan_loss"]["_target_"] = old["config"]["gan_loss"]["_target_"].replace(
        "translate.models.losses.", "translate.losses.")
    torch.save(old, tmp_path / "old.pt")
    cfg = resume_config(str(tmp_path / "old.pt"), [])
    assert cfg.logger._target_ == "translate.training.tracking.NoLogger"
    assert cfg.scheduler._target_.startswith("translate.training.schedulers.")
    assert cfg.gan_loss._target_.startswith("translate.models.losses.")
    assert load_generator(tmp_path / "old.pt") is not None
