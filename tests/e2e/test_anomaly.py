"""The out-of-domain guard: an autoencoder's reconstruction error, its threshold from the checkpoint, and what
infer.py and translate.inference.guard do with it on a mixed folder."""

from __future__ import annotations

import csv
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_overrides, write_image
from omegaconf import OmegaConf, open_dict
from PIL import Image

from translate.config.compose import compose
from translate.core.errors import CheckpointError, ConfigError
from translate.inference.convert import translate_files
from translate.inference.guard import GuardOptions, load_guard, main
from translate.loading.folder import save_model_folder, spec_of
from translate.networks.generators import UnetGenerator
from translate.training.loop import fit

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def drawing(path: Path, seed: int, size: int = 32) -> Path:
    """Black lines on white: the guard's domain."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 255, np.uint8)
    for _ in range(3):
        if rng.random() < 0.5:
            image[rng.integers(2, size - 2), :] = 0
        else:
            image[:, rng.integers(2, size - 2)] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="module")
def guard_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("guard")
    for i in range(24):
        drawing(tmp / "drawings" / "train" / f"{i}.png", i)
    for i in range(6):
        drawing(tmp / "drawings" / "val" / f"{i}.png", 100 + i)
    return trained(tmp / "run", "model=autoencoder", "data=single", f"data.root={tmp / 'drawings'}",
                   "generator.ngf=8", "generator.n_downs=3", "generator.latent_dim=16", "generator.max_channels=32",
                   "data.batch_size=4", "data.max_size=null", "trainer.max_steps=60", "trainer.val_every=60")


def trained(run: Path, *overrides: str) -> Path:
    """``run`` after a tiny training run with ``overrides``."""
    cfg = compose(tiny_overrides(*overrides))
    with open_dict(cfg):
        cfg.run_dir = str(run)
    fit(cfg)
    return run


@pytest.fixture
def mixed(tmp_path) -> Path:
    """3 drawings like the guard's and 3 photos (noise) that are not."""
    for i in range(3):
        drawing(tmp_path / "mixed" / f"drawing{i}.png", 200 + i, size=48)
        write_image(tmp_path / "mixed" / f"photo{i}.png", (48, 48), seed=i)
    return tmp_path / "mixed"


def test_options_parse_the_short_and_the_long_form():
    assert GuardOptions.from_config("runs/ae").checkpoint == "runs/ae"
    assert GuardOptions.from_config({"checkpoint": "x", "action": "skip"}).action == "skip"
    assert GuardOptions.from_config(None).checkpoint is None
    with pytest.raises(ConfigError, match="guard.level is not a guard setting"):
        GuardOptions.from_config({"checkpoint": "x", "level": 3})
    with pytest.raises(ConfigError, match="guard.percentile=0"):
        GuardOptions(checkpoint="x", percentile=0)


def test_the_threshold_is_a_percentile_of_the_stored_val_errors(guard_run):
    guard = load_guard(GuardOptions(str(guard_run), percentile=50))
    assert len(guard.val_scores) == 6
    assert guard.threshold == pytest.approx(float(np.percentile(guard.val_scores.numpy(), 50)))
    assert load_guard(GuardOptions(str(guard_run), threshold=0.25)).threshold == 0.25
    # 99th: about one in a hundred in-domain inputs flagged, which 6 val scores cannot place: it says so
    with pytest.warns(UserWarning, match=r"6 val scores place the 99th percentile only as about their largest.*"
                                         r"about 1 in 7 .*on 99 or more images"):
        high = load_guard(GuardOptions(str(guard_run)))
    assert guard.threshold <= high.threshold <= float(guard.val_scores.max())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_guard(GuardOptions(str(guard_run), percentile=80))  # 6 >= 4: placed


def test_the_guard_scores_by_reconstruction_code_detail_or_all(guard_run):
    from translate.config.checkpoint import load_checkpoint
    from translate.evaluation.metrics import l1
    from translate.inference.guard import DetailFit
    from translate.models.autoencoder import code_distance, codes_of, image_detail

    state = load_checkpoint(guard_run / "checkpoints" / "last.pt")["model_state"]
    distances, errors, details = state["val_code_distances"], state["val_errors"], state["val_details"]
    # each val code's distance from the mean and spread of the other five (held out). Standardised in sample
    # the mean square is (n - 1) / n = 5/6; held out (Jensen on each value's share of the squares) >= n / (n - 1)
    assert float(distances.square().mean()) >= 6 / 5 - 1e-4
    assert len(details) == 6 and bool((details > 0).all())
    kinds = {k: load_guard(GuardOptions(str(guard_run), score=k, percentile=50))
             for k in ("reconstruction", "code", "detail", "all", "auto")}
    assert kinds["auto"].parts == kinds["all"].parts == ("reconstruction", "code", "detail")
    assert kinds["auto"].score == "all" and kinds["code"].score == "code"
    fit = kinds["detail"].detail_fit
    ratios = (errors.double().numpy() + 2 / 255) / (details.double().numpy() + 2 / 255)
    assert fit.log_ratio == pytest.approx(float(np.log(np.sort(ratios)[2])), rel=1e-6)  # torch's lower median
    val = {"reconstruction": errors, "code": distances, "detail": fit.distance(errors, details).float()}
    for kind in ("reconstruction", "code", "detail"):
        assert torch.allclose(kinds[kind].val_scores, val[kind])
    medians = {k: float(v.median()) for k, v in val.items()}
    assert kinds["all"].medians == pytest.approx(medians)
    assert torch.allclose(kinds["all"].val_scores, torch.stack([v / medians[k] for k, v in val.items()]).amax(0))
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    prepared, rebuilt = kinds["all"].reconstruct(x)
    G = kinds["all"].G
    expected = {"reconstruction": l1(rebuilt, prepared),
                "code": code_distance(codes_of(G, prepared), state["code_mean"], state["code_spread"])}
    expected["detail"] = fit.distance(expected["reconstruction"], image_detail(prepared)).float()
    expected["all"] = torch.stack([expected[k] / medians[k] for k in val]).amax(0)
    for kind, scores in expected.items():
        assert torch.allclose(kinds[kind].scores(x), scores, atol=1e-6)
        assert kinds[kind].threshold == pytest.approx(float(np.percentile(kinds[kind].val_scores.numpy(), 50)))
    # the detail score is a distance from the line either way: twice or half the expected error score alike
    line = DetailFit(log_ratio=0.0)
    detail = torch.tensor([0.1])
    expected_error = detail  # log ratio 0: the expected error equals the detail (floors cancel)
    twice, half = ((detail + 2 / 255) * k - 2 / 255 for k in (2, 0.5))
    above, below = line.distance(twice, detail), line.distance(half, detail)
    assert float(line.distance(expected_error, detail)) == pytest.approx(0.0, abs=1e-9)
    assert float(above) == pytest.approx(float(below)) == pytest.approx(np.log(2))


def test_held_out_code_distances_leave_each_code_out():
    from translate.models.autoencoder import code_distance, held_out_code_distances, spread_floor

    codes = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    codes[:, 4] = 0.5  # a value that never varies: divided by the floor, distance 0 along it
    expected = []
    for i in range(len(codes)):
        others = torch.cat([codes[:i], codes[i + 1:]])
        spread = others.std(0).clamp_min(spread_floor(codes.std(0)))
        expected.append(code_distance(codes[i:i + 1], others.mean(0), spread))
    assert torch.allclose(held_out_code_distances(codes), torch.cat(expected), atol=1e-5)


def test_a_threshold_from_held_out_code_distances_flags_its_share_of_new_codes():
    """32 val codes of 64 values: the largest in-sample distance is exceeded by a fifth of new in-domain codes;
    the largest held-out one by about 1 in 33 (exchangeable), as a 99th-percentile threshold promises."""
    from translate.models.autoencoder import code_distance, held_out_code_distances

    generator = torch.Generator().manual_seed(0)
    in_sample, held_out = [], []
    for _ in range(40):
        val, new = torch.randn(32, 64, generator=generator), torch.randn(400, 64, generator=generator)
        mean, spread = val.mean(0), val.std(0)
        distances = code_distance(new, mean, spread)
        in_sample.append(float((distances > code_distance(val, mean, spread).max()).float().mean()))
        held_out.append(float((distances > held_out_code_distances(val).max()).float().mean()))
    assert np.mean(in_sample) > 0.1
    assert 0.01 < np.mean(held_out) < 0.06


def test_image_detail_is_the_fine_structure():
    from translate.models.autoencoder import image_detail

    flat = torch.zeros(1, 3, 32, 32)
    lines = flat.clone()
    lines[..., ::4, :] = 1.0
    smooth = torch.linspace(-1, 1, 32).expand(1, 3, 32, 32)
    details = image_detail(torch.cat([flat, smooth, lines]))
    assert details[0] == 0 and details[1] < 0.01 and details[2] > 0.2


def test_code_scores_need_the_code_statistics(guard_run, tmp_path, cycle_run):
    from translate.config.checkpoint import atomic_save, load_checkpoint

    ckpt = load_checkpoint(guard_run / "checkpoints" / "last.pt")
    for key in ("code_mean", "code_spread", "val_code_distances"):
        del ckpt["model_state"][key]
    old = tmp_path / "old.pt"
    atomic_save(ckpt, old)
    assert load_guard(GuardOptions(str(old))).parts == ("reconstruction", "detail")  # auto: what it allows
    with pytest.raises(ConfigError, match="guard.score=code: guard=.*old.pt keeps no code statistics"):
        load_guard(GuardOptions(str(old), score="code"))
    del ckpt["model_state"]["val_details"]
    atomic_save(ckpt, old)
    assert load_guard(GuardOptions(str(old))).parts == ("reconstruction",)
    with pytest.raises(ConfigError, match="guard.score=detail: guard=.*old.pt keeps no val image details"):
        load_guard(GuardOptions(str(old), score="detail"))
    for score in ("all", "detail"):
        with pytest.raises(ConfigError, match=f"guard.score={score}: guard=cycle scores by the cycle error alone"):
            load_guard(GuardOptions("cycle", score=score), str(cycle_run), "AtoB")
    with pytest.raises(ConfigError, match=r"^guard\.score='pixels' is not allowed"):
        GuardOptions(checkpoint="x", score="pixels")


def test_infer_lists_scores_and_skips_out_of_domain_inputs(guard_run, mixed, tmp_path):
    G = UnetGenerator(num_downs=5, ngf=4).eval()
    guard = load_guard(GuardOptions(str(guard_run)))
    summary = translate_files(G, mixed, tmp_path / "out", guard=guard, quiet=True)
    assert summary.converted == 6 and len(summary.scores) == 6
    flagged = {Path(p).stem for p, _ in summary.flagged}
    assert flagged == {"photo0", "photo1", "photo2"}
    with open(tmp_path / "out" / "guard.csv") as f:
        rows = {Path(r["file"]).stem: r for r in csv.DictReader(f)}
    assert set(rows) == {f"drawing{i}" for i in range(3)} | flagged
    assert all(rows[n]["flagged"] == "1" for n in flagged) and rows["drawing0"]["flagged"] == "0"
    assert "out of domain 3 of 6 scored" in str(summary)
    skip = load_guard(GuardOptions(str(guard_run), action="skip"))
    skipped = translate_files(G, mixed, tmp_path / "out2", guard=skip, quiet=True)
    assert skipped.converted == 3 and skipped.out_of_domain_skipped == 3
    assert sorted(p.stem for p in (tmp_path / "out2").glob("*.png")) == ["drawing0", "drawing1", "drawing2"]


def test_the_score_command_writes_scores_and_error_maps(guard_run, mixed, tmp_path, capsys):
    assert main(["score", str(guard_run), f"input={mixed}", f"output={tmp_path / 'scores'}"]) == 0
    with open(tmp_path / "scores" / "scores.csv") as f:
        rows = {Path(r["file"]).stem: float(r["score"]) for r in csv.DictReader(f)}
    assert min(rows[f"photo{i}"] for i in range(3)) > max(rows[f"drawing{i}"] for i in range(3))
    with Image.open(tmp_path / "scores" / "photo0_error.png") as im:
        assert im.size == (3 * 32, 32)  # input | reconstruction | error, at the guard's size
    assert "scored 6: 3 above the threshold" in capsys.readouterr().err
    assert main(["score", str(guard_run), f"input={mixed}", f"output={tmp_path / 'rec'}", "score=reconstruction"]) == 0
    with open(tmp_path / "rec" / "scores.csv") as f:
        assert {Path(r["file"]).stem: float(r["score"]) for r in csv.DictReader(f)} != rows  # in pixel units now
    assert main(["score", str(guard_run), f"input={mixed}", "score=pixels"]) == 2
    assert "score=pixels: one of auto, all, reconstruction, code, detail" in capsys.readouterr().err


def test_a_guard_that_is_not_an_autoencoder_is_one_line(tmp_path, guard_run):
    run = subprocess.run([sys.executable, "-m", "translate.inference.guard", "score", str(tmp_path / "none"), "input=x"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert run.returncode == 2 and "none" in run.stderr and "Traceback" not in run.stderr


def test_the_page_api_carries_the_guard_score(guard_run, mixed, tmp_path):
    pytest.importorskip("uvicorn")
    from serving import post

    from translate.apps.serve import ModelService, ServeOptions, free_port, serving_in_thread
    from translate.loading.pipeline import Pipeline
    from translate.models.base import Translation

    loaded = Pipeline(UnetGenerator(num_downs=5, ngf=4).eval(), Translation("G", "A", "B"))
    service = ModelService(loaded, "test", ServeOptions(port=free_port()), load_guard(GuardOptions(str(guard_run))))
    with serving_in_thread(service) as url:
        _, _, photo = post(f"{url}/api/translate", (mixed / "photo0.png").read_bytes(), "image/png")
        _, _, sketch = post(f"{url}/api/translate", (mixed / "drawing0.png").read_bytes(), "image/png")
    assert photo["x-guard-flagged"] == "1" and sketch["x-guard-flagged"] == "0"
    assert float(photo["x-guard-score"]) > float(photo["x-guard-threshold"]) > float(sketch["x-guard-score"])


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory) -> Path:
    """A tiny CycleGAN between drawings (A) and noise photos (B), validated once."""
    tmp = tmp_path_factory.mktemp("cycle")
    for folder, n, first in (("trainA", 6, 0), ("valA", 3, 50)):
        for i in range(n):
            drawing(tmp / "data" / folder / f"{i}.png", first + i)
    for folder, n, first in (("trainB", 6, 0), ("valB", 2, 50)):
        for i in range(n):
            write_image(tmp / "data" / folder / f"{i}.png", (32, 32), seed=first + i)
    return trained(tmp / "run", "model=cyclegan", "data=unaligned", f"data.root={tmp / 'data'}",
                   "generator=resnet_6blocks", "generator.n_blocks=1", "generator.ngf=4", "trainer.max_steps=4",
                   "trainer.val_every=4")


def test_a_cyclegan_guards_itself_by_its_cycle_error(cycle_run, mixed, tmp_path):
    from translate.evaluation.metrics import l1
    from translate.loading.generator import load_translation

    guard = load_guard(GuardOptions("cycle", percentile=50), str(cycle_run), "AtoB")
    assert len(guard.val_scores) == 3  # one per valA image, kept by training's calibration
    assert guard.threshold == pytest.approx(float(np.percentile(guard.val_scores.numpy(), 50)))
    there, back = (load_translation(cycle_run, direction=d).module for d in ("AtoB", "BtoA"))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    zoomed = guard.prepared(x)  # as the val images were: load_size 36, the centre 32
    assert guard.load_size == 36 and zoomed.shape == x.shape and not torch.equal(zoomed, x)
    assert torch.allclose(guard.scores(x), l1(back(there(zoomed)), zoomed), atol=1e-6)
    back_guard = load_guard(GuardOptions("cycle"), str(cycle_run), "BtoA")  # valB's, as the val pairs draw them
    assert len(back_guard.val_scores) == 3 and not torch.equal(back_guard.val_scores, guard.val_scores)
    summary = translate_files(there, mixed, tmp_path / "out", guard=guard, quiet=True)
    assert len(summary.scores) == 6 and (tmp_path / "out" / "guard.csv").is_file()


def test_guard_cycle_needs_a_cyclegan(guard_run, cycle_run):
    with pytest.raises(ConfigError, match="guard=cycle: the model .* is not a CycleGAN"):
        load_guard(GuardOptions("cycle"), str(guard_run), None)
    with pytest.raises(ConfigError, match="guard=cycle"):
        load_guard(GuardOptions("cycle"), None, None)


def test_the_guard_scores_inputs_as_its_val_images_were_prepared():
    """data.preprocess=resize_and_crop (load 72, crop 64): val images were zoomed and centre-cropped when the
    threshold was set, so scored inputs are too (unzoomed, the demo CycleGAN's unseen day scenes scored
    higher than its val scenes: 13 % false alarms at the 99th percentile)."""
    from translate.data.transforms import PairedTransform
    from translate.inference.guard import Guard, _val_zoom

    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    data = OmegaConf.create({"preprocess": "resize_and_crop", "load_size": 72, "crop_size": 64})
    guard = Guard(torch.nn.Identity(), 64, 3, 0.1, load_size=_val_zoom(data))
    val = PairedTransform(preprocess="resize_and_crop", load_size=72, crop_size=64, train=False)(image)[0]
    scored = guard.prepared(image[None].float() / 127.5 - 1)[0]
    assert guard.load_size == 72 and (scored - val).abs().max() < 2e-2
    assert _val_zoom(OmegaConf.create({"preprocess": "none", "load_size": 72, "crop_size": 64})) == 0
    assert _val_zoom(OmegaConf.create({"preprocess": "resize_and_crop", "load_size": 64, "crop_size": 64})) == 0


# ------------------------------------------------------------------ issue 28: a guard never fails open, never overwrites
def _tampered(guard_run: Path, tmp_path: Path, change) -> Path:
    ckpt = torch.load(guard_run / "checkpoints" / "last.pt", weights_only=True)
    change(ckpt)
    torch.save(ckpt, tmp_path / "tampered.pt")
    return tmp_path / "tampered.pt"


@pytest.mark.parametrize("key, value, message", [
    ("val_errors", float("nan"), "NaN or infinite"), ("val_errors", -1.0, ">= 0 per val image"),
    ("val_code_distances", float("inf"), "NaN or infinite"), ("code_spread", 0.0, "above zero"),
    ("code_mean", float("nan"), "NaN or infinite")])
def test_malformed_guard_statistics_are_refused_not_disarmed(guard_run, tmp_path, key, value, message):
    def spoil(ckpt):
        ckpt["model_state"][key] = torch.full_like(ckpt["model_state"][key], value)
    path = _tampered(guard_run, tmp_path, spoil)
    with pytest.raises(CheckpointError, match=rf"model_state\.{key} .*{message}"):
        load_guard(GuardOptions(str(path)))
    with pytest.raises(ConfigError, match="guard.threshold=nan: a finite number"):
        load_guard(GuardOptions(str(guard_run), threshold=float("nan")))


def test_a_guard_with_a_huge_stored_size_is_refused_before_any_work(guard_run, tmp_path):
    path = _tampered(guard_run, tmp_path, lambda ckpt: ckpt["config"]["data"].__setitem__("crop_size", 10**6))
    with pytest.raises(CheckpointError, match=r"data\.crop_size=1000000 is out of range"):
        load_guard(GuardOptions(str(path)))


def test_the_score_command_never_writes_over_an_input(guard_run, tmp_path, capsys):
    folder = tmp_path / "inputs"
    drawing(folder / "a.png", 1)
    write_image(folder / "a.jpg", (32, 32), seed=1)
    drawing(folder / "b.png", 2)
    drawing(folder / "a_error.png", 3)  # an input that an error map of a.png would be named like
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert main(["score", str(guard_run), f"input={folder}", f"output={folder}"]) == 2
    assert "is inside the input folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert main(["score", str(guard_run), f"input={folder}", f"output={tmp_path / 'out'}"]) == 0
    maps = sorted(p.name for p in (tmp_path / "out").glob("*_error.png"))
    assert maps == ["a.jpg_error.png", "a.png_error.png", "a_error_error.png", "b_error.png"]


def test_infer_takes_the_guard_short_form_beside_its_options(guard_run, mixed, tmp_path):
    """``guard=RUN guard.action=skip`` on the command line (Hydra alone refuses the pair)."""
    G = UnetGenerator(num_downs=5, ngf=4).eval()
    model = save_model_folder(G, spec_of(G, direction="AtoB", source="A", target="B", size=32), tmp_path / "m", "")
    proc = subprocess.run([sys.executable, str(ROOT / "infer.py"), f"checkpoint={model}", f"input={mixed}",
                           f"output={tmp_path / 'out'}", f"guard={guard_run}", "guard.action=skip", "quiet=true"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.png")) == ["drawing0", "drawing1", "drawing2"]
