"""CUT and FastCUT: the PatchNCE loss, the generators' feature layers, the projection head, the one-sided model
through training, resume, validation against true translations, inference, export and DDP."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from translate.config.checkpoint import load_checkpoint
from translate.config.compose import build_model, compose
from translate.core.errors import ConfigError
from translate.models import CUT
from translate.models.losses import LSGAN, patch_nce
from translate.networks import PatchDiscriminator, ResnetGenerator, UnetGenerator
from translate.networks.heads import PatchProjection

ROOT = Path(__file__).resolve().parents[2]


def _unit(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=1)


# ---------------------------------------------------------------------- the loss
def test_patch_nce_ranks_identity_below_chance_below_shuffled_patches():
    images, patches, dim = 2, 64, 32
    keys = _unit(images * patches, dim)
    identity = patch_nce(keys.clone(), keys, num_images=images)
    # Chance: an embedding that tells no patch from another (every similarity equal) scores log(patches).
    same = _unit(1, dim).expand(images * patches, dim).contiguous()
    uninformative = patch_nce(same, same, num_images=images)
    # Each image's patches shuffled: every query now matches another location's key, a negative.
    order = torch.cat([torch.randperm(patches, generator=torch.Generator().manual_seed(i)) + i * patches
                       for i in range(images)])
    assert (order != torch.arange(images * patches)).float().mean() > 0.9
    shuffled = patch_nce(keys[order], keys, num_images=images)
    chance = math.log(patches)  # the positive among patches - 1 negatives
    assert identity < 0.01 < chance < shuffled
    assert torch.isclose(uninformative, torch.tensor(chance))


def test_patch_nce_negatives_come_from_the_same_image_only():
    """Two images' loss is the mean of each image's loss alone: no patch of one image is a negative of the
    other."""
    keys, queries = _unit(2 * 16, 8), _unit(2 * 16, 8, seed=1)
    both = patch_nce(queries, keys, num_images=2)
    alone = [patch_nce(queries[i * 16:(i + 1) * 16], keys[i * 16:(i + 1) * 16], num_images=1) for i in range(2)]
    assert torch.allclose(both, (alone[0] + alone[1]) / 2, atol=1e-6)
    assert not torch.allclose(both, patch_nce(queries, keys, num_images=1))  # one pool of 32 patches differs


# ---------------------------------------------------------------------- feature layers
def test_resnet_feature_layers_are_cut_s_layers_recounted():
    G = ResnetGenerator(ngf=8, n_blocks=9)
    layers = G.default_feature_layers
    assert layers == [0, 4, 7, 10, 14]
    kinds = [type(G.model[i]).__name__ for i in layers]
    assert kinds == ["ReflectionPad2d", "Conv2d", "Conv2d", "ResnetBlock", "ResnetBlock"]
    assert [G.model[i].stride for i in (4, 7)] == [(2, 2), (2, 2)]  # the two downsampling convolutions
    # The features are the children's outputs, caught here with forward hooks.
    seen = {}
    hooks = [G.model[i].register_forward_hook(lambda m, args, out, i=i: seen.__setitem__(i, out)) for i in layers]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        G(x)
        feats = G.features(x, layers)
    for h in hooks:
        h.remove()
    assert all(torch.equal(f, seen[i]) for f, i in zip(feats, layers))
    assert [f.shape[1:] for f in feats] == [(3, 38, 38), (16, 16, 16), (32, 8, 8), (32, 8, 8), (32, 8, 8)]
    assert ResnetGenerator(ngf=8, n_blocks=2).default_feature_layers == [0, 4, 7, 10, 11]


def test_unet_feature_layers_and_no_new_parameters():
    G = UnetGenerator(num_downs=6, ngf=8)
    assert G.default_feature_layers == [0, 1, 2, 3, 4]
    x = torch.randn(1, 3, 64, 64)
    feats = G.features(x, [0, 1, 3])
    assert torch.equal(feats[0], x) and [f.shape[-1] for f in feats] == [64, 32, 8]
    # The same call through forward (how a DDP wrapper reaches it).
    assert all(torch.equal(a, b) for a, b in zip(feats, G(x, feature_layers=[0, 1, 3])))
    # features adds no parameter or buffer: the reference parameter counts still hold.
    assert sum(p.numel() for p in UnetGenerator(num_downs=8).parameters()) == 54_413_955
    assert sum(p.numel() for p in ResnetGenerator(n_blocks=9).parameters()) == 11_378_179
    with pytest.raises(ValueError, match="give distinct layer numbers from 0 to 6"):
        G.features(x, [0, 7])


# ---------------------------------------------------------------------- the model
def _cut(**kwargs) -> CUT:
    return CUT(generator=lambda **kw: ResnetGenerator(ngf=8, n_blocks=6, **kw),
               discriminator=lambda **kw: PatchDiscriminator(ndf=8, **kw), gan_loss=LSGAN(), **kwargs)


def test_the_head_exists_from_construction():
    model = _cut()
    assert isinstance(model.F, PatchProjection) and len(model.F.mlps) == 5
    # C -> 256 -> 256 per layer, C the channels of layers 0, 4, 7, 10, 14 of an ngf-8 ResNet.
    assert [m[0].in_features for m in model.F.mlps] == [3, 16, 32, 32, 32]
    assert all(m[0].out_features == m[2].out_features == 256 for m in model.F.mlps)
    head = {id(p) for p in model.F.parameters()}
    grouped = {id(p) for net in model.optimizer_groups()["G"] for p in net.parameters()}
    assert head <= grouped  # the head's Adam state exists from step 0 (and is saved, and resumes)
    assert model.auxiliaries() == {"F": model.F} and list(model.translations) == ["AtoB"]


def test_nce_gradients_reach_the_generator_and_head_only():
    torch.manual_seed(0)
    model = _cut()
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    batch["A"].requires_grad_(True)
    out = model.generate(batch)
    losses = model.g_step(batch, out)
    assert {"loss/G/gan", "loss/G/nce", "loss/G/nce_idt", "loss/G"} <= losses.keys()
    losses["loss/G"].backward()
    assert all(p.grad is None for p in model.D.parameters())  # D is frozen in the G step
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.F.parameters())
    assert sum(float(p.grad.abs().sum()) for p in model.G.parameters()) > 0
    # The input side is the fixed reference: through the NCE the source image gets no gradient.
    model.zero_grad()
    source = batch["A"].detach().requires_grad_(True)
    model.nce_loss(source, model.G(source.detach())).backward()
    assert source.grad is None


def test_nce_idt_and_flips():
    model = _cut(nce_idt=False, flip_equivariance=True, seed=3)
    batch = {"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32)}
    flips = [bool(model.generate(batch)["flipped"]) for _ in range(40)]
    assert 5 < sum(flips) < 35  # about half the steps
    assert "idt_B" not in model.generate(batch)
    # The draws are a stream of the model's own, restored from its saved state.
    state = model.extra_state()
    again = [bool(model.generate(batch)["flipped"]) for _ in range(10)]
    model.load_extra_state(state)
    assert [bool(model.generate(batch)["flipped"]) for _ in range(10)] == again
    with pytest.raises(ConfigError, match="model.nce_idt=false"):
        _cut(nc_A=1, nc_B=3)
    with pytest.raises(ConfigError, match=r"model.nce_layers=\[0, 40\]"):
        _cut(nce_layers=[0, 40])


def test_cut_and_fastcut_compose_with_the_paper_settings():
    cut = compose(["model=cut"])
    assert (cut.model.lambda_gan, cut.model.lambda_nce, cut.model.nce_idt, cut.model.nce_T) == (1.0, 1.0, True, 0.07)
    assert cut.gan_loss._target_.endswith("LSGAN") and cut.model.num_patches == 256
    assert cut.model.init_type == "xavier" and "pool_size" not in cut.model
    fast = compose(["model=fastcut"])
    assert (fast.model.lambda_nce, fast.model.nce_idt, fast.model.flip_equivariance) == (10.0, False, True)
    h2z = compose(["experiment=horse2zebra_cut"])
    assert (h2z.trainer.max_epochs, h2z.scheduler.decay_start, h2z.data.batch_size) == (400, 0.5, 1)
    h2z_fast = compose(["experiment=horse2zebra_fastcut"])
    assert (h2z_fast.trainer.max_epochs, h2z_fast.scheduler.decay_start) == (200, 0.75)
    assert h2z_fast.model.lambda_nce == 10.0 and h2z.checkpoint.monitor == h2z_fast.checkpoint.monitor == "val/kid"
    unet = build_model(compose(["model=cut", "generator=unet_64", "data.input_nc=3"]))
    assert unet.nce_layers == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------- end to end
def _cut_cfg(tiny_cfg, root: Path, run_dir: Path, *extra: str):
    return tiny_cfg("model=cut", "generator=resnet_6blocks", "data=unaligned", f"data.root={root}",
                    "data.batch_size=2", "trainer.max_steps=4", *extra, run_dir=run_dir)


@pytest.mark.slow
def test_a_cut_checkpoint_translates_exports_and_refuses_the_other_direction(tmp_path, tiny_cfg, unaligned_root):
    from translate.inference.convert import translate_files
    from translate.inference.export import export_generator
    from translate.loading.generator import load_translation
    from translate.training.loop import fit

    metrics = fit(_cut_cfg(tiny_cfg, unaligned_root, tmp_path / "run"))
    assert {"loss/G/nce", "loss/G/nce_idt", "loss/D"} <= metrics.keys()
    ckpt = load_checkpoint(tmp_path / "run")
    assert set(ckpt["networks"]) == {"G", "D", "F"} and "draws" in ckpt["model_state"]
    loaded = load_translation(tmp_path / "run")
    assert type(loaded.module).__name__ == "ResnetGenerator"
    with pytest.raises(ConfigError, match="direction=BtoA is not available"):
        load_translation(tmp_path / "run", direction="BtoA")
    summary = translate_files(loaded.module, unaligned_root / "valA", tmp_path / "out", quiet=True)
    assert summary.converted == 2

    import onnxruntime

    x = torch.rand(1, 3, 32, 32) * 2 - 1
    path = export_generator(loaded.module, tmp_path / "g.onnx", "onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(onnx_out), loaded.module(x), atol=1e-5)

    # infer.py: the other direction is one line and exit 2.
    proc = subprocess.run([sys.executable, str(ROOT / "infer.py"), f"checkpoint={tmp_path / 'run'}",
                           f"input={unaligned_root / 'valB'}", f"output={tmp_path / 'back'}", "direction=BtoA"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "direction=BtoA is not available" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "back").exists()


@pytest.mark.slow
def test_unpaired_models_are_scored_against_true_translations(tmp_path, demo_cache):
    """The rendered day -> night demo knows each val scene's night rendering: CUT and CycleGAN both get
    val/paired_* (CycleGAN also for B -> A), and the demo experiments keep best.pt by it."""
    from translate.data.demo import render_day_night
    from translate.training.loop import fit

    for experiment, keys in (("demo_day2night_cut", {"val/paired_ssim", "val/paired_psnr", "val/paired_l1"}),
                             ("demo_day2night", {"val/paired_ssim", "val/BtoA/paired_ssim"})):
        cfg = compose([f"experiment={experiment}", "debug=fast", "trainer.progress_bar=false",
                       "trainer.max_steps=2", "trainer.val_every=2", "data.num_train=6", "data.num_val=3",
                       "data.load_size=64", "data.crop_size=64"])
        with open_dict(cfg):
            cfg.run_dir = str(tmp_path / experiment)
        metrics = fit(cfg)
        assert keys <= metrics.keys() and metrics["best/step"] == 2, sorted(metrics)
        assert 0 < metrics["val/paired_ssim"] < 1
    # The truth pairs are the same scene by day and by night.
    truth = next(demo_cache.glob("demo/day2night-*-n6-3-seed0")) / "truth"
    # translate evaluate scores a checkpoint on them too.
    from translate.evaluation.evaluate import run as evaluate

    report = evaluate(compose([f"checkpoint={tmp_path / 'demo_day2night_cut'}", "data=unaligned",
                               f"data.root={truth.parent}", "data.truth=truth", f"output={tmp_path / 'eval'}"],
                              config_name="evaluate"))
    assert report["direction"] == "AtoB" and 0 < report["paired_ssim"] < 1 and report["paired_psnr"] > 0
    day, night = sorted((truth / "A" / "val").iterdir()), sorted((truth / "B" / "val").iterdir())
    assert len(day) == len(night) == 3
    import numpy as np
    from PIL import Image

    val_day = sorted((truth.parent / "valA").iterdir())
    assert np.array_equal(np.asarray(Image.open(day[0])), np.asarray(Image.open(val_day[0])))
    seed = 0 * 1_000_003 + 6  # the first val scene, after 6 training scenes
    assert np.array_equal(np.asarray(Image.open(night[0])), np.asarray(render_day_night(seed, 64, night=True)))


@pytest.mark.slow
def test_cut_on_two_processes(tmp_path, unaligned_root):
    from test_ddp import _torchrun

    run = tmp_path / "run"
    common = ["debug=fast", "model=cut", "generator=resnet_6blocks", "data=unaligned",
              f"data.root={unaligned_root}", "data.load_size=36", "data.crop_size=32", "data.batch_size=1",
              "trainer.progress_bar=false", "trainer.max_steps=2", f"run_dir={run}"]
    proc = _torchrun(*common, cwd=tmp_path)  # the loop checks at the end that both processes' weights agree
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 2 and set(ckpt["networks"]) == {"G", "D", "F"}
    assert all(not k.startswith("module.") for k in ckpt["networks"]["F"])


def test_the_head_normalises_as_the_reference_does():
    from translate.networks.heads import l2_normalized

    x = torch.tensor([[3e-8, 4e-8], [3.0, 4.0]])
    reference = x / (x.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7)  # CUT's Normalize(2)
    assert torch.equal(l2_normalized(x), reference)
    assert not torch.allclose(torch.nn.functional.normalize(x, dim=1, eps=1e-7), reference)  # max(norm, eps) differs
