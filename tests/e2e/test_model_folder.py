"""A generator on its own (issue 29): ``export format=folder`` writes a model folder, ``translate.load`` converts
images with it without the training stack, every command reads it, and a hostile folder builds nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import write_image
from omegaconf import open_dict
from PIL import Image

import translate
from translate.config.compose import compose
from translate.core.errors import CheckpointError
from translate.inference.convert import run as infer
from translate.inference.export import model_card
from translate.inference.export import run as export
from translate.loading.folder import CONFIG, WEIGHTS, load_model_folder, save_model_folder, spec_of
from translate.loading.generator import load_generator, load_translation
from translate.networks.bicycle import LatentUnetGenerator
from translate.training.loop import fit

ROOT = Path(__file__).resolve().parents[2]
TRAINING_STACK = ("hydra", "translate.config.compose", "translate.models.losses", "translate.models", "translate.training.loop",
                  "translate.training.optimization", "translate.evaluation.validation", "translate.networks.discriminators")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, Path]:
    """(a two-step pix2pix run, its generator exported as a model folder)."""
    tmp = tmp_path_factory.mktemp("folder")
    for split, n in (("train", 2), ("val", 1)):
        for i in range(n):
            write_image(tmp / "data" / split / "A" / f"{i}.png", (64, 64), seed=300 + 10 * n + i)
            write_image(tmp / "data" / split / "B" / f"{i}.png", (64, 64), seed=400 + 10 * n + i)
    cfg = compose(["debug=fast", "logger=none", "trainer.progress_bar=false", "data=aligned",
                   f"data.root={tmp / 'data'}", "generator=unet_64", "generator.ngf=8", "data.load_size=64",
                   "data.crop_size=64", "trainer.max_steps=2", "trainer.num_samples=0", "trainer.val_every=0",
                   "trainer.export_folder=true"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp / "run")
    fit(cfg)
    path = export(compose([f"checkpoint={tmp / 'run'}", "format=folder", f"output={tmp / 'model'}"],
                          config_name="export"))
    return tmp / "run", path


def test_a_run_exports_a_folder_that_converts_images_as_the_run_does(folder):
    run, path = folder
    assert sorted(p.name for p in path.iterdir()) == ["README.md", CONFIG, WEIGHTS]
    assert "translate.models.Pix2Pix" in (path / "README.md").read_text()
    pipe, from_run = translate.load(path), translate.load(run)
    x = torch.rand(2, 3, 40, 72) * 2 - 1  # not a multiple of the stride: padded and cropped back
    assert torch.equal(pipe.tensors(x), from_run.tensors(x))
    image = pipe(Image.new("RGB", (70, 50), "white"))
    assert image.size == (70, 50) and image.mode == "RGB"
    assert [im.size for im in pipe([Image.new("L", (64, 64)), Image.new("RGBA", (32, 64))])] == [(64, 64), (32, 64)]


@pytest.mark.parametrize("overrides, shown", [
    ("- experiment=demo\n- trainer.max_steps=2\n- data.root=my data\n",
     "`python train.py experiment=demo trainer.max_steps=2 'data.root=my data'`"),
    ("- a=`rm -rf ~`\n", "the settings in the run's `config.yaml`"),  # not shown in a code span
    ("{x: 1}\n", "the settings in the run's `config.yaml`"),
    ("- [unclosed\n", "the settings in the run's `config.yaml`"),
])
def test_the_model_card_names_the_command_that_trained_the_run(folder, overrides, shown):
    run, _ = folder
    (run / ".hydra").mkdir(exist_ok=True)
    (run / ".hydra" / "overrides.yaml").write_text(overrides)
    try:
        assert shown in model_card(load_translation(run), str(run))
        assert shown in model_card(load_translation(run), str(run / "checkpoints" / "last.pt"))
    finally:
        (run / ".hydra" / "overrides.yaml").unlink()


def test_a_run_can_write_its_model_folder_when_it_completes(folder):
    run, exported = folder
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    assert torch.equal(translate.load(run / "model").tensors(x), translate.load(exported).tensors(x))
    assert (run / "model" / "README.md").read_text() == (exported / "README.md").read_text()


def test_loading_a_folder_imports_no_training_stack(folder):
    code = ("import sys, translate; from PIL import Image; p = translate.load(sys.argv[1]); "
            "p(Image.new('RGB', (64, 64))); print(' '.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code, str(folder[1])], capture_output=True, text=True, timeout=120,
                          check=True, cwd=ROOT)
    loaded = proc.stdout.split()
    assert [m for m in loaded if m.startswith(TRAINING_STACK)] == []
    assert "translate.loading.folder" in loaded


def test_every_command_reads_a_model_folder(folder, tmp_path):
    path = folder[1]
    write_image(tmp_path / "in" / "a.png", (48, 40), seed=1)
    summary = infer(compose([f"checkpoint={path}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}"],
                            config_name="infer"))
    assert summary.converted == 1 and Image.open(tmp_path / "out" / "a.png").size == (48, 40)
    with pytest.raises(Exception, match="holds the AtoB generator"):
        load_generator(path, direction="BtoA")


def test_a_style_generator_keeps_its_codes(tmp_path):
    torch.manual_seed(0)
    G = LatentUnetGenerator(nz=4, num_downs=5, ngf=8, w_dim=8, n_mlp=1).eval()
    spec = spec_of(G, direction="AtoB", source="A", target="B", size=32)
    pipe = translate.load(save_model_folder(G, spec, tmp_path / "bicycle", "card"))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert pipe.nz == 4
    assert not torch.equal(pipe.tensors(x, seed=1), pipe.tensors(x, seed=2))
    with torch.no_grad():
        code = torch.randn(1, 4, generator=torch.Generator().manual_seed(1))
        assert torch.equal(pipe.tensors(x, seed=1), G(x, code).clamp(-1, 1))
        assert torch.equal(pipe.tensors(x), G(x).clamp(-1, 1))  # no seed: the mean style


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(network="os.system"), "not a network of translate.networks"),
    (lambda c: c.update(network="translate.networks.discriminators.PatchDiscriminator"), "not a generator"),
    (lambda c: c.update(network="translate.networks.layers.nn"), "not a generator"),
    (lambda c: c["arguments"].update(ngf=-4), r"arguments\.ngf=-4 is out of range"),
    (lambda c: c["arguments"].update(ngf=16), "weights do not fit"),
    (lambda c: c["arguments"].update(evil=1), "unexpected keyword"),
    (lambda c: c.update(format="pickle"), "not a translate model folder"),
    (lambda c: c.update(stride="64"), "stride is missing or not int"),
])
def test_a_hostile_or_broken_folder_is_refused_in_one_line(folder, tmp_path, change, message):
    copy = tmp_path / "copy"
    copy.mkdir()
    config = json.loads((folder[1] / CONFIG).read_text())
    change(config)
    (copy / CONFIG).write_text(json.dumps(config))
    (copy / WEIGHTS).write_bytes((folder[1] / WEIGHTS).read_bytes())
    with pytest.raises(CheckpointError, match=message) as e:
        load_model_folder(copy)
    assert "\n" not in str(e.value)


def test_a_model_folder_is_evaluated_and_named_at_its_own_size_and_name(folder):
    from translate.evaluation.evaluate import _evaluation_data

    run, path = folder
    pipe = translate.load(path)
    assert pipe.size == 64 and pipe.name == "model" and pipe.family == "UnetGenerator"
    data = _evaluation_data(compose([f"checkpoint={path}", f"data.root={run.parent / 'data'}"], config_name="evaluate"),
                            pipe)
    assert data.crop_size == 64  # the size it was trained at, as for its run (not 256)
