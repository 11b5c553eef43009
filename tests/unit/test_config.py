"""Every option of every config group composes and instantiates."""

from __future__ import annotations

import pytest
import torch

from translate.config.compose import CONF_DIR, build, build_model, compose
from translate.core.errors import ConfigError

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")  # hydra/: launchers


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def for_noise(group: str, option: str) -> bool:
    """Whether a generator/discriminator option is one of model=gan's (it is built for an image ``size``)."""
    import inspect

    from translate.config.compose import get_object

    target = compose(["~experiment", f"{group}={option}", "data.root=x"])[group]._target_
    parameters = inspect.signature(get_object(target)).parameters
    # Noise generators take a size and no input; their discriminators judge whole images of a size.
    return "size" in parameters and (group == "discriminator" or "in_channels" not in parameters)


def image_options(group: str) -> list[str]:
    return [o for o in options(group) if not for_noise(group, o)]


def noise_options(group: str) -> list[str]:
    return [o for o in options(group) if for_noise(group, o)]


def test_groups_are_the_documented_ones():
    assert set(GROUPS) == {"model", "generator", "discriminator", "gan_loss", "augment", "data", "optim",
                           "scheduler", "trainer", "logger", "experiment", "recipe", "debug", "hparams_search"}
    assert set(options("augment")) == {"none", "diffaugment", "ada"}
    assert set(options("recipe")) == {"small_paired", "small_unpaired"}
    assert {"unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks"} <= set(options("generator"))
    assert {"patchgan", "pixel", "multiscale"} <= set(options("discriminator"))
    assert set(options("gan_loss")) == {"vanilla", "lsgan", "hinge", "wgangp"}
    assert {"aligned", "unaligned", "single", "demo_sketch2photo", "demo_day2night", "demo_faces"} <= set(options("data"))
    assert {"dcgan", "tutorial", "stylegan"} == set(noise_options("generator")) == set(noise_options("discriminator"))
    assert {"demo", "facades", "edges2shoes", "night2day", "maps", "horse2zebra"} <= set(options("experiment"))


def test_default_is_the_demo():
    cfg = compose()
    assert cfg.data._target_ == "translate.data.demo.sketch2photo"
    assert cfg.model._target_ == "translate.models.Pix2Pix" and cfg.debug is None if "debug" in cfg else True


def test_stable_keys_exist():
    cfg = compose(["data=aligned", "~experiment"])
    for key in ("data.root", "data.load_size", "data.crop_size", "data.batch_size", "data.num_workers",
                "trainer.max_steps", "trainer.precision", "trainer.device", "trainer.seed",
                "trainer.checkpoint_every", "resume", "logger", "generator.ngf", "generator.norm",
                "generator.dropout", "discriminator.ndf", "discriminator.n_layers", "discriminator.norm"):
        node = cfg
        for part in key.split("."):
            assert part in node.keys(), key
            node = node[part] if part != "root" else None


def test_reference_defaults_without_an_experiment():
    p2p = compose(["~experiment", "data.root=x"])
    assert (p2p.generator.num_downs, p2p.generator.norm, p2p.generator.dropout) == (8, "batch", True)
    assert p2p.gan_loss._target_.endswith("VanillaGAN") and p2p.model.lambda_l1 == 100
    cyc = compose(["~experiment", "model=cyclegan", "data=unaligned", "data.root=x"])
    assert (cyc.generator.n_blocks, cyc.generator.norm, cyc.generator.dropout) == (9, "instance", False)
    assert cyc.gan_loss._target_.endswith("LSGAN") and cyc.discriminator.norm == "instance"
    assert (cyc.model.lambda_A, cyc.model.lambda_B, cyc.model.lambda_identity, cyc.model.pool_size) == (10, 10, 0.5, 50)
    # The command line wins over what a model or experiment picks.
    assert compose(["experiment=horse2zebra", "generator=unet_128"]).generator.num_downs == 7


@pytest.mark.parametrize("option", image_options("generator"))
@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_generator_options_build_models(option, model, norm):
    cfg = compose(["~experiment", f"model={model}", f"generator={option}", "generator.ngf=4", "discriminator.ndf=4",
                   f"generator.norm={norm}", "data.root=x"])
    net = build_model(cfg)
    G = net.generators()["G" if model == "pix2pix" else "G_A"]
    side = getattr(G, "stride", 4) * (1 if getattr(G, "stride", 4) > 4 else 8)
    # SPADE starts from the map at 1/32, pix2pixHD's bottleneck is at 1/16: 2x2, which instance norm and reflection
    # padding need
    side *= 2 if option in ("spade", "pix2pixhd") else 1
    net.eval()
    with torch.no_grad():
        assert G(torch.randn(1, 3, side, side)).shape == (1, 3, side, side)


@pytest.mark.parametrize("option", image_options("discriminator"))
@pytest.mark.parametrize("gan_loss", options("gan_loss"))
def test_discriminator_and_loss_options(option, gan_loss):
    # Two scales only: 64x64 pairs are too small for the third scale of the 70x70 PatchGAN.
    extra = ["discriminator.num_D=2"] if option == "multiscale" else []
    cfg = compose(["~experiment", f"discriminator={option}", f"gan_loss={gan_loss}", "generator=unet_64",
                   "generator.ngf=4", "discriminator.ndf=4", "data.root=x", *extra])
    model = build_model(cfg)
    batch = {"A": torch.randn(2, 3, 64, 64), "B": torch.randn(2, 3, 64, 64)}
    out = model.generate(batch)
    d = model.d_step(batch, out)
    g = model.g_step(batch, out)
    assert torch.isfinite(d["loss/D"]) and torch.isfinite(g["loss/G"])
    assert ("loss/D/gp" in d) == (gan_loss == "wgangp")
    (d["loss/D"] + g["loss/G"]).backward()


@pytest.mark.parametrize("generator", noise_options("generator"))
@pytest.mark.parametrize("discriminator", noise_options("discriminator"))
@pytest.mark.parametrize("gan_loss", options("gan_loss"))
def test_noise_generator_discriminator_and_loss_options(generator, discriminator, gan_loss):
    cfg = compose(["~experiment", "model=gan", f"generator={generator}", f"discriminator={discriminator}",
                   f"gan_loss={gan_loss}", "generator.ngf=4", "discriminator.ndf=4", "data.root=x",
                   "data.crop_size=32", "model.r1_gamma=1"])
    model = build_model(cfg)
    batch = model.with_fixed_inputs({"A": torch.randn(2, 3, 32, 32)}, seed=0)
    out = model.generate(batch)
    d, g = model.d_step(batch, out), model.g_step(batch, out)
    assert out["fake"].shape == (2, 3, 32, 32) and "loss/D/r1" in d
    assert torch.isfinite(d["loss/D"]) and torch.isfinite(g["loss/G"])
    (d["loss/D"] + g["loss/G"]).backward()


def test_feature_matching_with_multiscale():
    cfg = compose(["~experiment", "discriminator=multiscale", "model.lambda_feat=10", "generator=unet_64", "discriminator.num_D=2",
                   "generator.ngf=4", "discriminator.ndf=4", "data.root=x"])
    model = build_model(cfg)
    batch = {"A": torch.randn(1, 3, 64, 64), "B": torch.randn(1, 3, 64, 64)}
    g = model.g_step(batch, model.generate(batch))
    assert g["loss/G/feat"] > 0


@pytest.mark.parametrize("option", options("data"))
def test_data_options(option, tmp_path, aligned_root, unaligned_root):
    root = {"aligned": aligned_root, "unaligned": unaligned_root, "single": aligned_root / "train" / "A",
            "corrupt": aligned_root / "train" / "B"}
    extra = [f"data.root={root[option]}"] if option in root else [f"data.root={tmp_path / option}", "data.num_train=2",
                                                                  "data.num_val=1", "data.size=32"]
    if option in ("labels", "cityscapes", "ade20k"):  # label maps: their own layouts and channel counts
        from helpers import label_dataset

        layout = {"labels": "folders"}.get(option, option)
        extra = [f"data.root={label_dataset(tmp_path / option, layout)}"]
        extra += ["data.label_nc=4"] + (["data.preprocess=resize_and_crop"] if option == "cityscapes" else [])
    cfg = compose([f"data={option}", "data.load_size=32", "data.crop_size=32", *extra])
    data = build(cfg.data)
    assert data.train_dataset()[(0, 0)]["A"].shape == (cfg.data.input_nc if "label_nc" in cfg.data else 3, 32, 32)


@pytest.mark.parametrize("option", options("scheduler"))
def test_scheduler_options(option):
    cfg = compose([f"scheduler={option}"])
    opt = build(cfg.optim.G)([torch.nn.Parameter(torch.zeros(1))])
    sched = build(cfg.scheduler)(opt, total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(2e-4)
    if option == "linear_decay":
        assert lrs[:5] == [pytest.approx(2e-4)] * 5 and lrs[5] > lrs[9] > 0 and sched.get_last_lr()[0] == 0
    if option == "constant":
        assert set(lrs) == {2e-4}


@pytest.mark.parametrize("option", options("logger"))
def test_logger_options(option):
    logger = build(compose([f"logger={option}"]).logger)
    assert hasattr(logger, "log_metrics")


@pytest.mark.parametrize("option", options("experiment") + options("debug") + options("hparams_search"))
def test_experiments_and_debug_compose(option):
    group = next(g for g in ("debug", "hparams_search", "experiment") if option in options(g))
    cfg = compose([f"{group}={option}"])
    assert cfg.model._target_.startswith("translate.models.")


# recipe -> the experiments it is for (image-to-image families whose discriminators judge images)
RECIPE_EXPERIMENTS = {
    "small_paired": ["demo", "sketch2photo", "facades", "edges2shoes", "maps", "night2day", "demo_bicycle",
                     "demo_labels", "demo_labels_pix2pixhd"],
    "small_unpaired": ["demo_day2night", "demo_day2night_cut", "demo_day2night_fastcut", "day2night_cyclegan",
                       "day2night_cut", "horse2zebra", "horse2zebra_cut", "horse2zebra_fastcut"],
}


@pytest.mark.parametrize("recipe", sorted(RECIPE_EXPERIMENTS))
def test_recipes_apply_on_top_of_their_experiments(recipe):
    """A recipe adds its settings to any of its experiments, and the command line still wins over it."""
    for experiment in RECIPE_EXPERIMENTS[recipe]:
        cfg = compose([f"experiment={experiment}", f"recipe={recipe}", "data.root=x"])
        assert cfg.augment._target_ == "translate.models.augment.DiffAugment", experiment
        assert cfg.model == compose([f"experiment={experiment}", "data.root=x"]).model  # the family's own settings
        build_model(cfg)
        build(cfg.augment)
    assert compose([f"recipe={recipe}", "augment=none"]).augment._target_ == "translate.models.augment.Augment"


def test_the_unpaired_recipe_augments_by_translation_alone():
    """small_unpaired: DiffAugment's translation (on the day->night measurements colour hurt CUT, cutout did not help it)."""
    cfg = compose(["experiment=demo_day2night_cut", "recipe=small_unpaired"])
    assert cfg.augment.policy == "translation" and cfg.gan_loss == compose(["experiment=demo_day2night_cut"]).gan_loss
    assert compose(["experiment=demo_day2night", "recipe=small_unpaired", "augment.policy=color"]).augment.policy == "color"


def test_bad_option_value_is_a_one_line_error():
    cfg = compose(["~experiment", "generator.norm=group", "data.root=x"])
    with pytest.raises(ConfigError, match="cannot build translate.models.Pix2Pix: norm='group' is not one of batch"):
        build_model(cfg)


def test_an_empty_run_folder_is_removed_even_when_another_rank_got_there_first(tmp_path, monkeypatch):
    from pathlib import Path

    from translate.config import compose as compose_module

    folder = tmp_path / "run"
    (folder / ".hydra").mkdir(parents=True)
    compose_module._remove_if_empty(str(folder))
    assert not folder.exists()
    compose_module._remove_if_empty(str(folder))  # already gone: nothing to do
    (folder / ".hydra").mkdir(parents=True)
    listing = Path.iterdir

    def gone_meanwhile(self):  # the other torchrun rank removes the shared folder between the two looks
        if self == folder:
            raise FileNotFoundError(str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", gone_meanwhile)
    compose_module._remove_if_empty(str(folder))  # no error
