"""The model contract: a family defined outside the library (tests/support/tiny_family.py) trains, resumes exactly,
validates, evaluates, translates files and exports through the existing code, with no change to the loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import fit_killed_at_step
from omegaconf import OmegaConf, open_dict

from translate.config.checkpoint import load_checkpoint
from translate.config.compose import allow_targets, compose, resume_config
from translate.core.errors import ConfigError
from translate.evaluation.evaluate import run as evaluate
from translate.inference.convert import translate_files
from translate.inference.export import export_generator
from translate.loading.generator import load_translation
from translate.models.base import Translation, TranslationModel
from translate.training.loop import fit

STAND_IN = {"_target_": "stand_ins.TinyFeatures"}
# Configs stored in checkpoints build only trusted targets: a family defined outside translate/ registers its own.
allow_targets("tiny_family.OneSided", "tiny_family.StyleGenerator", "stand_ins.TinyFeatures")


def _config(root: Path, run_dir: Path, *extra: str):
    cfg = compose(["debug=fast", "logger=none", "trainer.progress_bar=false", "data=unaligned", f"data.root={root}",
                   "data.load_size=36", "data.crop_size=32", "data.batch_size=2", "trainer.max_steps=6",
                   "trainer.checkpoint_every=2", "trainer.val_every=3", "trainer.sample_every=3", *extra])
    with open_dict(cfg):
        cfg.run_dir = str(run_dir)
        cfg.model = {"_target_": "tiny_family.OneSided", "nc_A": 3, "nc_B": 3, "lambda_feature": 1.0}
        cfg.generator = {"_target_": "tiny_family.StyleGenerator", "_partial_": True, "width": 8, "style_dim": 4}
        cfg.optim.H = OmegaConf.to_container(cfg.optim.G)  # the head's own optimizer group
        cfg.metrics.features = STAND_IN
        cfg.checkpoint.monitor = "val/kid"
    return cfg


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(run_dir)
    return {f"{n}.{k}": v for n, sd in ckpt["networks"].items() for k, v in sd.items()}


def test_the_base_class_assembles_discriminator_losses():
    class Identity(TranslationModel):
        paired = True

    from translate.models.losses import LSGAN, WGANGP

    D = torch.nn.Conv2d(3, 1, 3)
    real, fake = torch.ones(2, 3, 8, 8), torch.zeros(2, 3, 8, 8)
    plain = Identity(LSGAN()).discriminator_loss(D, real, fake, "D_X")
    assert set(plain) == {"loss/D_X/real", "loss/D_X/fake", "loss/D_X", "D_out/D_X/real", "D_out/D_X/fake",
                          "D_out/D_X/real_sign"}
    assert plain["D_out/D_X/real"] == D(real).mean()  # D's verdicts are logged beside its losses
    assert plain["D_out/D_X/real_sign"] == torch.sign(D(real) - 0.5).mean()  # LSGAN decides at 0.5
    assert torch.allclose(plain["loss/D_X"], 0.5 * (plain["loss/D_X/real"] + plain["loss/D_X/fake"]))
    penalised = Identity(WGANGP()).discriminator_loss(D, real, fake)
    assert "loss/D/gp" in penalised and penalised["loss/D"] > 0.5 * (penalised["loss/D/real"] + penalised["loss/D/fake"])


@pytest.mark.slow
def test_a_new_family_trains_validates_and_resumes_exactly(tmp_path, unaligned_root):
    full = fit(_config(unaligned_root, tmp_path / "full", "trainer.ema.enabled=true"))
    assert full["step"] == 6 and {"val/fid", "val/kid", "loss/G/feature", "lr/H"} <= full.keys()
    assert not any(k.startswith("val/AtoB") or k.startswith("val/BtoA") for k in full)  # one direction, unprefixed
    ckpt = load_checkpoint(tmp_path / "full")
    assert set(ckpt["networks"]) == {"G", "D", "H"} and set(ckpt["ema"]) == {"G"}  # auxiliaries: saved, not averaged
    assert set(ckpt["optimizers"]) == {"G", "H", "D"} and set(ckpt["scalers"]) == {"G", "D"}
    from PIL import Image

    with Image.open(tmp_path / "full" / "samples" / "step_0000006.png") as grid:
        # input | output (an unpaired one-sided model has no target column), 32 px tiles shown at 128
        assert grid.width == 2 * 128 + 3 * 2

    fit_killed_at_step(_config(unaligned_root, tmp_path / "split", "trainer.ema.enabled=true"), 5)
    assert load_checkpoint(tmp_path / "split")["step"] == 4
    assert fit(resume_config(str(tmp_path / "split"), []))["step"] == 6
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_new_family_evaluates_translates_and_exports(tmp_path, unaligned_root):
    fit(_config(unaligned_root, tmp_path / "run", "trainer.val_every=0"))
    loaded = load_translation(tmp_path / "run")
    assert loaded.translation == Translation("G", "A", "B") and type(loaded.module).__name__ == "StyleGenerator"
    with pytest.raises(ConfigError, match="trained AtoB; direction=BtoA is not available"):
        load_translation(tmp_path / "run", direction="BtoA")
    # A style code changes the output; None is the mean style, what evaluation, inference and export use.
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert not torch.equal(loaded.module(x), loaded.module(x, torch.ones(1, 4)))

    cfg = compose([f"checkpoint={tmp_path / 'run'}", "data=unaligned", f"data.root={unaligned_root}",
                   f"output={tmp_path / 'eval'}", "+metrics.features._target_=stand_ins.TinyFeatures"],
                  config_name="evaluate")
    report = evaluate(cfg)
    assert report["direction"] == "AtoB" and report["fid"] > 0 and report["num_images"] == 2

    summary = translate_files(loaded.module, unaligned_root / "valA", tmp_path / "out", quiet=True)
    assert summary.converted == 2 and len(list((tmp_path / "out").iterdir())) == 2

    import onnxruntime

    path = export_generator(loaded.module, tmp_path / "g.onnx", "onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(onnx_out), loaded.module(x), atol=1e-5)


def test_a_missing_optimizer_group_is_named(tmp_path, unaligned_root):
    cfg = _config(unaligned_root, tmp_path / "run")
    with open_dict(cfg):
        del cfg.optim["H"]
    with pytest.raises(ConfigError, match=r"optim\.H: the model has an optimizer group 'H'"):
        fit(cfg)
