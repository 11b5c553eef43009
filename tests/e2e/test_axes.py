"""TL-GAN axes: labels, the attribute extractor, fitting (regression, SVM), untangling (Gram-Schmidt and
InterFaceGAN's conditional projection), sweeps, z vs w separability, distributions, files and edits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_image
from omegaconf import OmegaConf
from PIL import Image
from scipy.stats import spearmanr
from torch import nn

from translate.core.errors import ConfigError, DataError
from translate.latent.attributes import pixel_attributes
from translate.latent.axes import (
    Axes,
    conditional_projection,
    find_axes,
    fit_axis,
    gram_schmidt,
    load_axes,
    sample_scores,
    untangle,
)
from translate.latent.extractor import PixelExtractor, TrainedExtractor, read_labels, train_extractor
from translate.latent.report import distribution, frechet, kl_divergence, separability, sweep, sweeps
from translate.latent.sampling import LatentEdit, Sampler

ROOT = Path(__file__).resolve().parents[2]


class ToneGenerator(nn.Module):
    """A stand-in generator whose images' brightness and colour temperature are known functions of z:
    grey level tanh(a.z), red-minus-blue tanh(b.z), with b at cosine 0.8 to a (correlated attributes)."""

    def __init__(self, z_dim: int = 8, size: int = 16):
        super().__init__()
        self.z_dim, self.size = z_dim, size
        a = torch.zeros(z_dim)
        a[0] = 1.0
        b = torch.zeros(z_dim)
        b[0], b[1] = 0.8, 0.6
        self.register_buffer("a", a)
        self.register_buffer("b", b)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        grey = 0.5 * torch.tanh(0.6 * z @ self.a)
        warm = 0.4 * torch.tanh(0.6 * z @ self.b)
        rgb = torch.stack([grey + warm, grey, grey - warm], 1)
        return rgb[:, :, None, None].expand(-1, -1, self.size, self.size)


@pytest.fixture(scope="module")
def tone_samples():
    sampler = Sampler(ToneGenerator(), seed=0)
    return sampler, sample_scores(sampler, PixelExtractor(), 3000, seed=0, batch_size=500)


# ---------------------------------------------------------------------------------------------- fitting
def test_an_axis_moves_its_attribute_monotonically(tone_samples):
    sampler, samples = tone_samples
    axes = find_axes(samples, ["brightness", "colour_temperature"], space="z")
    assert axes.info["attributes"]["brightness"]["r2"] > 0.9
    assert abs(float(axes.vectors["brightness"] @ sampler.G.a)) > 0.99  # found the true direction
    z = sampler.latents(64, seed=5)
    means = sweep(sampler, PixelExtractor(), axes.vectors["brightness"], axes.stds["brightness"], "z", z,
                  ["brightness"])["brightness"]
    assert spearmanr(range(5), means).statistic >= 0.9 and means[-1] > means[0] + 0.1


def test_untangling_halves_the_base_attributes_change_and_keeps_the_target(tone_samples):
    sampler, samples = tone_samples
    raw = find_axes(samples, ["brightness", "colour_temperature"], space="z")
    clean = find_axes(samples, ["brightness", "colour_temperature"], space="z", base=["brightness"])
    assert abs(clean.info["cosines_before"]["colour_temperature"]["brightness"]) > 0.5
    assert abs(clean.info["cosines_after"]["colour_temperature"]["brightness"]) < 1e-5
    extractor, z = PixelExtractor(), sampler.latents(64, seed=6)
    names = ["colour_temperature", "brightness"]
    before = sweep(sampler, extractor, raw.vectors["colour_temperature"], raw.stds["colour_temperature"], "z", z, names)
    after = sweep(sampler, extractor, clean.vectors["colour_temperature"], clean.stds["colour_temperature"], "z", z,
                  names)

    def change(m):
        return abs(m[-1] - m[0])

    assert change(after["brightness"]) * 2 <= change(before["brightness"])
    assert change(after["colour_temperature"]) >= 0.5 * change(before["colour_temperature"]) > 0.05
    # The report's sweeps say the same, with and without untangling.
    report = sweeps(sampler, extractor, clean, raw.vectors, z)["colour_temperature"]
    assert abs(report["change_per_std"]["brightness"]) * 2 <= abs(
        report["change_per_std_before_untangling"]["brightness"])


def test_regression_and_svm_axes_agree(tone_samples):
    _, samples = tone_samples
    for name in ("brightness", "colour_temperature"):
        reg = fit_axis(samples["z"], samples[f"score/{name}"], method="regression")
        svm = fit_axis(samples["z"], samples[f"score/{name}"], method="svm")
        assert float(reg.axis @ svm.axis) >= 0.8 and svm.accuracy > 0.9 and svm.r2 is None


def test_gram_schmidt_and_the_conditional_projection_agree():
    torch.manual_seed(0)
    n, c1, c2 = (torch.nn.functional.normalize(torch.randn(6), dim=0) for _ in range(3))
    basis = gram_schmidt([c1, c2])
    assert abs(float(basis[0] @ basis[1])) < 1e-6 and all(abs(float(b.norm()) - 1) < 1e-6 for b in basis)
    one = conditional_projection(n, [c1])
    assert torch.allclose(one, torch.nn.functional.normalize(n - (n @ c1) * c1, dim=0))
    two = conditional_projection(n, [c1, c2])
    assert abs(float(two @ c1)) < 1e-6 and abs(float(two @ c2)) < 1e-6
    axes = {"n": n, "c1": c1, "c2": c2}
    assert torch.allclose(untangle(axes, ["c1", "c2"], "gram_schmidt")["n"],
                          untangle(axes, ["c1", "c2"], "conditional")["n"], atol=1e-6)
    with pytest.raises(ConfigError, match="base: no axis 'c3'"):
        untangle(axes, ["c3"])
    with pytest.raises(ConfigError, match="untangle='qr'"):
        untangle(axes, ["c1"], "qr")


def test_separability_compares_z_and_w_on_the_same_samples():
    torch.manual_seed(0)
    z = torch.randn(800, 4)
    w = torch.cat([z[:, :1] ** 3, z[:, 1:]], 1)  # the attribute below is linear in w, not in z
    samples = {"z": z, "w": w, "score/thing": (w[:, 0] > 0.2).float()}
    result = separability(samples, ["thing"])["thing"]
    assert result["w"] > 0.97 and result["w"] >= result["z"]


# ---------------------------------------------------------------------------------------------- distributions
def test_frechet_and_kl_are_zero_for_the_same_thing_and_grow_apart():
    torch.manual_seed(0)
    a = torch.randn(500, 4)
    assert frechet(a, a) < 1e-6 < frechet(a, a + 1) and abs(frechet(a, a + 1) - 4) < 0.05
    p = torch.tensor([0.5, 0.5, 0.0])
    assert kl_divergence(p, p) < 1e-9 < kl_divergence(p, torch.tensor([1.0, 0.0, 0.0]))


# ---------------------------------------------------------------------------------------------- labels and extractor
def test_labels_files_are_checked(tmp_path):
    write_image(tmp_path / "a.png")
    cases = {
        "x,smile\na.png,1\n": "needs a 'file' column",
        "file,smile\n../a.png,1\n": "is not an image inside",
        "file,smile\nmissing.png,1\n": "is not an image inside",
        "file,smile\na.png,\n": "a value is missing",
    }
    for text, message in cases.items():
        (tmp_path / "labels.csv").write_text(text)
        with pytest.raises(DataError, match=message):
            read_labels(tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("file,smile\na.png,1\n")
    with pytest.raises(DataError, match="no attribute 'mood'"):
        read_labels(tmp_path / "labels.csv", ["mood"])
    (tmp_path / "labels.json").write_text(json.dumps([{"file": "a.png", "hair": "red", "size": 0.3}]))
    table = read_labels(tmp_path / "labels.json")
    assert [(a.name, a.kind) for a in table.attributes] == [("hair", "category"), ("size", "continuous")]
    with pytest.raises(DataError, match="no such labels file"):
        read_labels(tmp_path / "nope.csv")


@pytest.mark.slow
def test_the_extractor_learns_the_face_demos_labels_and_round_trips(tmp_path):
    from translate.data.faces import faces
    from translate.latent.extractor import ExtractorFeatures

    data = faces(root=str(tmp_path / "f"), num_train=600, num_val=10)
    table = read_labels(data.root / "labels.csv", ["hair_colour", "glasses", "head_size"])
    extractor, held_out = train_extractor(table, epochs=4, width=16)
    assert held_out["hair_colour"]["accuracy"] > 0.5  # chance: 1/7
    assert held_out["head_size"]["r2"] > 0.3
    path = extractor.save(tmp_path / "x.safetensors")
    again = TrainedExtractor.load(path)
    images = torch.rand(8, 3, 64, 64) * 2 - 1
    assert all(torch.equal(extractor.scores(images)[k], v) for k, v in again.scores(images).items())
    assert set(again.score_names) == {*(f"hair_colour={c}" for c in table.attributes[0].classes), "glasses",
                                      "head_size"}
    features = ExtractorFeatures(path)(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    assert features.shape == (2, 64)
    report = distribution(extractor, images, images)
    assert report["categories"]["hair_colour"]["kl"] < 1e-6 and report["frechet"]["images_each"] == 4
    assert report["frechet"]["real_vs_real"] > 0 and abs(report["frechet"]["real_vs_generated"]) < 1e-6
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(ConfigError, match="not a usable attribute extractor"):
        TrainedExtractor.load(tmp_path / "bad.safetensors")


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_axes_are_saved_beside_the_checkpoint_and_edit_what_is_generated(tmp_path):
    """A tiny StyleGAN run, its axes from pixel attributes (with the report), then generate with edits."""
    from helpers import tiny_overrides
    from omegaconf import open_dict

    from translate.apps.axes import run as find
    from translate.config.compose import compose
    from translate.latent.generate import run as generate
    from translate.training.loop import fit

    root = tmp_path / "images"
    for i in range(4):
        write_image(root / "train" / f"{i}.png", seed=i)
        write_image(root / "val" / f"{i}.png", seed=10 + i)
    cfg = compose(tiny_overrides("model=gan", "data=single", "generator=stylegan", "discriminator=stylegan",
                                 "generator.n_mlp=2", "generator.z_dim=16", f"data.root={root}",
                                 "trainer.max_steps=2", "trainer.val_every=0"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    fit(cfg)
    run_dir = tmp_path / "run"

    settings = OmegaConf.load(ROOT / "conf" / "axes.yaml")
    settings.pop("defaults"), settings.pop("hydra")
    settings = OmegaConf.merge(settings, {"checkpoint": str(run_dir), "extractor": "pixels", "samples": 600,
                                          "base": ["brightness"], "sweep_images": 16, "real_images": 8})
    axes = find(settings)
    folder = run_dir / "checkpoints"
    info = json.loads((folder / "axes.json").read_text())
    assert (folder / "axes.safetensors").is_file() and info["space"] == "w" and info["base"] == ["brightness"]
    assert set(info["report"]) == {"sweeps", "separability", "distribution"}
    assert info["report"]["distribution"]["frechet"]["images_each"] == 2  # the 4 val images, halved
    assert abs(info["cosines_after"]["saturation"]["brightness"]) < 1e-4

    base = OmegaConf.load(ROOT / "conf" / "generate.yaml")
    base.pop("defaults"), base.pop("hydra")
    brightness = {}
    for k in (-3, 3):
        out = tmp_path / f"edit{k}"
        generate(OmegaConf.merge(base, {"checkpoint": str(run_dir), "output": str(out), "n": 16,
                                        "edit": {"brightness": k}}))
        grid = torch.from_numpy(np.asarray(Image.open(out / "grid.png"))).permute(2, 0, 1)
        brightness[k] = float(pixel_attributes(grid[None])["brightness"])
    assert brightness[3] > brightness[-3]
    from translate.latent.generate import load_noise_generator

    assert axes.edits({"brightness": 1}, load_noise_generator(run_dir))[0].amount == pytest.approx(axes.stds["brightness"])

    proc = subprocess.run([sys.executable, "-m", "translate.latent.generate", f"checkpoint={run_dir}",
                           f"output={tmp_path / 'x'}", "edit.mood=1"], capture_output=True, text=True, cwd=ROOT,
                          check=False)
    assert proc.returncode == 2 and "edit.mood: no such axis" in proc.stderr
    (folder / "axes.safetensors").unlink()
    proc = subprocess.run([sys.executable, "-m", "translate.latent.generate", f"checkpoint={run_dir}",
                           f"output={tmp_path / 'y'}", "edit.brightness=1"], capture_output=True, text=True, cwd=ROOT,
                          check=False)
    assert proc.returncode == 2 and "translate axes" in proc.stderr


def test_edits_must_fit_the_generator():
    with pytest.raises(ConfigError, match="needs a StyleGAN"):
        Sampler(ToneGenerator(), edits=[LatentEdit(torch.zeros(8), 1.0, "w")])


# ---------------------------------------------------------------------------------------------- damaged axes files
@pytest.mark.parametrize("damage, message", [
    ("std-nan", r"axes.json: axis 'hair': std=nan is not a finite number > 0"),
    ("std-null", r"axes.json: axis 'hair': std=None is not a finite number > 0"),
    ("std-zero", r"axes.json: axis 'hair': std=0.0 is not a finite number > 0"),
    ("vector-nan", r"axes.safetensors: axis 'hair' holds non-finite values"),
])
def test_axes_with_non_finite_values_are_refused_naming_the_axis(tmp_path, damage, message):
    """A NaN spread or direction would turn every edited image black: refused when the axes are loaded."""
    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"")
    vectors = {"smile": torch.tensor([1.0, 0.0]), "hair": torch.tensor([0.0, 1.0])}
    if damage == "vector-nan":
        vectors["hair"] = torch.tensor([float("nan"), 1.0])
    Axes(vectors, "z", {"smile": 0.5, "hair": 0.7}, {}).save(tmp_path)
    info = json.loads((tmp_path / "axes.json").read_text())
    info["std"]["hair"] = {"std-nan": float("nan"), "std-null": None, "std-zero": 0.0}.get(damage, 0.7)
    (tmp_path / "axes.json").write_text(json.dumps(info))  # a hand-edited file may hold a bare NaN
    with pytest.raises(ConfigError, match=message):
        load_axes(checkpoint)


@pytest.mark.parametrize("amount", [float("nan"), 1e308, "abc"])
def test_an_edit_amount_must_be_a_finite_number_of_deviations(amount):
    axes = Axes({"smile": torch.tensor([1.0, 0.0])}, "z", {"smile": 0.5}, {})
    with pytest.raises(ConfigError, match=r"edit.smile=.*: a finite number of standard deviations, at most 100"):
        axes.edits({"smile": amount}, ToneGenerator(z_dim=2))
    assert axes.edits({"smile": -3}, ToneGenerator(z_dim=2))[0].amount == -1.5


def test_the_axes_command_runs_its_app(tmp_path):
    """``translate axes`` runs the app, and a wrong checkpoint is one line and exit code 2."""
    proc = subprocess.run([sys.executable, "-m", "translate.apps.axes", f"checkpoint={tmp_path / 'none'}"],
                          capture_output=True, text=True, cwd=ROOT, check=False, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith("none: no such checkpoint file")


def test_a_category_axis_can_be_named_as_the_command_line_writes_it():
    """``edit.hair_colour.black=2`` (the command line cannot put ``=`` in a key) names the axis hair_colour=black."""
    axes = Axes({"hair_colour=black": torch.tensor([1.0, 0.0]), "smile": torch.tensor([0.0, 1.0])}, "z",
                {"hair_colour=black": 0.5, "smile": 0.25}, {})
    G = ToneGenerator(z_dim=2)
    nested = axes.edits(OmegaConf.create({"hair_colour": {"black": 2}, "smile": 1}), G)
    flat = axes.edits({"hair_colour=black": 2, "smile": 1}, G)
    assert [(e.amount, e.axis.tolist()) for e in nested] == [(e.amount, e.axis.tolist()) for e in flat]
    with pytest.raises(ConfigError, match=r"edit.hair_colour=red: no such axis"):
        axes.edits({"hair_colour": {"red": 1}}, G)
