"""Batch inference: checkpoints (ours, reference, safetensors), any-size images, failures, resume, tiling,
export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import png
import pytest
import torch
from helpers import write_image
from omegaconf import open_dict
from PIL import Image
from reference_nets import RefResnet, RefUnet

from translate.config.compose import compose
from translate.core.errors import CheckpointError, ConfigError, DataError
from translate.data.images import read_picture
from translate.inference.convert import Translator, translate_files
from translate.loading.generator import load_generator
from translate.loading.reference import reference_key_map
from translate.networks import ResnetGenerator, init_weights
from translate.training.loop import fit

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "official_arch.json").read_text())


def _train(tmp: Path, *overrides: str) -> Path:
    cfg = compose(["debug=fast", "logger=none", "trainer.progress_bar=false", "trainer.max_steps=2",
                   "trainer.num_samples=0", *overrides])
    with open_dict(cfg):
        cfg.run_dir = str(tmp / "run")
    fit(cfg)
    return tmp / "run"


@pytest.fixture(scope="module")
def p2p_run(tmp_path_factory) -> Path:
    """A pix2pix run (U-Net of depth 6 with dropout, ngf 8) that kept G_ema."""
    tmp = tmp_path_factory.mktemp("p2p")
    for i in range(4):
        write_image(tmp / "data" / "train" / "A" / f"{i}.png", (64, 64), seed=i)
        write_image(tmp / "data" / "train" / "B" / f"{i}.png", (64, 64), seed=10 + i)
    return _train(tmp, "data=aligned", f"data.root={tmp / 'data'}", "generator=unet_64", "data.load_size=64",
                  "data.crop_size=64", "trainer.ema.enabled=true", "trainer.ema.decay=0.5")


@pytest.fixture(scope="module")
def cyc_run(tmp_path_factory) -> Path:
    """A CycleGAN run with 1-channel A and 3-channel B (ResNet-6, ngf 8)."""
    tmp = tmp_path_factory.mktemp("cyc")
    for i in range(3):
        write_image(tmp / "data" / "trainA" / f"{i}.png", (36, 36), seed=i, mode="L")
        write_image(tmp / "data" / "trainB" / f"{i}.png", (36, 36), seed=10 + i)
    return _train(tmp, "model=cyclegan", "data=unaligned", f"data.root={tmp / 'data'}", "generator=resnet_6blocks",
                  "data.input_nc=1", "model.lambda_identity=0")


@pytest.fixture
def messy(tmp_path) -> Path:
    """Odd sizes, RGBA, grayscale, 16-bit, EXIF rotation, a nested folder, and three broken files."""
    root = tmp_path / "in"
    write_image(root / "odd.png", (257, 301), seed=1)
    write_image(root / "tiny.jpg", (31, 17), seed=2)
    rgba = np.random.default_rng(3).integers(0, 256, (30, 40, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(root / "rgba.png")
    write_image(root / "gray.png", (33, 20), seed=4, mode="L")
    Image.fromarray(np.random.default_rng(5).integers(0, 65536, (24, 20), dtype=np.uint16)).save(root / "deep.png")
    deep_rgb = np.random.default_rng(6).integers(0, 65536, (12, 10, 3), dtype=np.uint16)
    with open(root / "deep_rgb.png", "wb") as f:
        png.Writer(10, 12, greyscale=False, bitdepth=16).write(f, deep_rgb.reshape(12, -1).tolist())
    im = Image.fromarray(np.random.default_rng(7).integers(0, 256, (20, 40, 3), dtype=np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    im.save(root / "rotated.jpg", exif=exif)
    write_image(root / "sub" / "nested.png", (48, 40), seed=8)
    good = (root / "odd.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 3])
    (root / "fake.jpg").write_text("not an image")
    (root / "empty.png").write_bytes(b"")
    return root


GOOD = {"odd.png", "tiny.jpg", "rgba.png", "gray.png", "deep.png", "deep_rgb.png", "rotated.jpg", "sub/nested.png"}


def _size(path: Path) -> tuple[int, int]:
    return read_picture(path).size


def test_converts_a_messy_folder(p2p_run, messy, tmp_path):
    out = tmp_path / "out"
    summary = translate_files(load_generator(p2p_run), messy, out, recursive=True, quiet=True, tile_size=128)
    assert summary.converted == len(GOOD) and summary.skipped == 0 and summary.exit_code == 1
    failed = {Path(src).name: reason for src, reason in summary.failed}
    assert set(failed) == {"truncated.png", "fake.jpg", "empty.png"}
    assert "empty file" in failed["empty.png"] and "not an image" in failed["fake.jpg"]
    for rel in GOOD:
        assert (out / rel).is_file(), rel
        assert _size(out / rel) == _size(messy / rel), rel  # every output keeps its input's size
    assert _size(out / "rotated.jpg") == (40, 20)  # EXIF orientation applied: 20 wide, 40 high
    rgba_in, rgba_out = read_picture(messy / "rgba.png"), read_picture(out / "rgba.png")
    assert torch.equal(rgba_in.alpha, rgba_out.alpha)  # alpha carried over
    assert read_picture(out / "gray.png").pixels.shape[0] == 3  # an RGB model gives RGB
    assert read_picture(out / "deep.png").bits == 16 and read_picture(out / "deep_rgb.png").bits == 16
    with open(out / "deep_rgb.png", "rb") as f:
        assert f.read(26)[24] == 16  # the PNG header says 16 bits per sample
    assert not [p for p in out.rglob(".*")]  # no temporary files left
    assert not (messy / "odd.png").read_bytes() != (tmp_path / "in" / "odd.png").read_bytes()


def test_rerun_skips_existing_outputs(p2p_run, messy, tmp_path):
    G = load_generator(p2p_run)
    translate_files(G, messy, tmp_path / "out", quiet=True)
    stamp = (tmp_path / "out" / "odd.png").stat().st_mtime_ns
    (tmp_path / "out" / "tiny.jpg").unlink()
    again = translate_files(G, messy, tmp_path / "out", quiet=True)
    assert again.converted == 1 and again.skipped == len(GOOD) - 2  # nested.png is not in a non-recursive run
    assert (tmp_path / "out" / "odd.png").stat().st_mtime_ns == stamp
    forced = translate_files(G, messy / "odd.png", tmp_path / "out", quiet=True, overwrite=True)
    assert forced.converted == 1


def test_glob_list_and_format(p2p_run, messy, tmp_path):
    G = load_generator(p2p_run)
    s = translate_files(G, str(messy / "*.png"), tmp_path / "g", quiet=True, format="jpg")
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == sorted(
        ["odd.jpg", "rgba.jpg", "gray.jpg", "deep.jpg", "deep_rgb.jpg"])
    assert s.converted == 5 and Image.open(tmp_path / "g" / "rgba.jpg").mode == "RGB"
    listing = tmp_path / "files.txt"
    listing.write_text(f"# two files\n{messy / 'tiny.jpg'}\n{messy / 'sub' / 'nested.png'}\n")
    s = translate_files(G, listing, tmp_path / "l", quiet=True, format="webp")
    # Listed paths are mirrored relative to the list file's folder.
    assert s.converted == 2 and (tmp_path / "l" / "in" / "sub" / "nested.webp").is_file()


def test_output_inside_input_needs_permission(p2p_run, messy):
    G = load_generator(p2p_run)
    with pytest.raises(ConfigError, match="inside the input folder"):
        translate_files(G, messy, messy / "out", quiet=True)
    s = translate_files(G, messy / "odd.png", messy, quiet=True, allow_inplace=True)
    assert s.failed and "would overwrite an input" in s.failed[0][1]  # inputs are never overwritten


def test_missing_inputs(p2p_run, tmp_path):
    with pytest.raises(DataError, match="no such file, folder or glob"):
        translate_files(load_generator(p2p_run), tmp_path / "nothing", tmp_path / "out", quiet=True)


def test_resize_mode_keeps_size_and_aspect(p2p_run, messy, tmp_path):
    s = translate_files(load_generator(p2p_run), messy / "odd.png", tmp_path / "o", resize=64, quiet=True)
    assert s.converted == 1 and _size(tmp_path / "o" / "odd.png") == (301, 257)


def test_resize_auto_warns_when_inputs_are_far_from_the_training_scale(p2p_run, tmp_path):
    """One rule, one line: images keep their size, and those far from the 64 px the demo model learned are named
    with the option that fixes it."""
    write_image(tmp_path / "in" / "sketch.png", (200, 150))
    write_image(tmp_path / "in" / "near.png", (80, 64))
    G = load_generator(p2p_run)
    with pytest.warns(UserWarning, match=r"^1 of 2 inputs are far from the 64 px the model was trained at \(e\.g\. "
                      r"sketch\.png, 200x150\): resize=64 translates them at that scale"):
        translate_files(G, tmp_path / "in", tmp_path / "out", resize="auto", trained_size=64, quiet=True)
    with Image.open(tmp_path / "out" / "sketch.png") as im:
        assert im.size == (200, 150)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        translate_files(G, tmp_path / "in", tmp_path / "quiet", resize=None, trained_size=64, quiet=True)
        translate_files(G, tmp_path / "in" / "near.png", tmp_path / "near", resize="auto", trained_size=64,
                        quiet=True)


def test_norm_mode_and_weights(p2p_run, messy, tmp_path):
    def run(name, **kw):
        G = load_generator(p2p_run, weights=kw.pop("weights", "auto"))
        translate_files(G, messy / "odd.png", tmp_path / name, quiet=True, **kw)
        return np.asarray(Image.open(tmp_path / name / "odd.png")).astype(int)

    eval1, eval2 = run("e1"), run("e2")
    assert np.array_equal(eval1, eval2)  # eval: deterministic
    train1, train2 = run("t1", norm_mode="train"), run("t2", norm_mode="train")
    assert not np.array_equal(train1, train2)  # train: dropout active, as the reference test script
    raw = run("raw", weights="G")
    assert not np.array_equal(raw, eval1)  # auto picked G_ema, which differs from G


def test_generator_selection(p2p_run, cyc_run):
    G_A, G_B = load_generator(cyc_run, direction="AtoB"), load_generator(cyc_run, direction="BtoA")
    from translate.networks.layers import generator_channels

    assert generator_channels(G_A) == (1, 3) and generator_channels(G_B) == (3, 1)
    assert not G_A.training
    with pytest.raises(ConfigError, match="trained AtoB; direction=BtoA"):
        load_generator(p2p_run, direction="BtoA")
    with pytest.raises(ConfigError, match="kept no G_ema"):
        load_generator(cyc_run, weights="G_ema")


def test_one_channel_model_takes_rgb_input(cyc_run, messy, tmp_path):
    s = translate_files(load_generator(cyc_run, direction="BtoA"), messy / "odd.png", tmp_path / "o", quiet=True)
    assert s.converted == 1 and read_picture(tmp_path / "o" / "odd.png").pixels.shape[0] == 1


# ---------------------------------------------------------------- reference weights


def _reference_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in REFERENCE[name]["state_dict"].items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=g) * 0.05
    return sd


@pytest.mark.slow
@pytest.mark.parametrize("name,arch,ref", [
    ("G_resnet_9blocks_instance_nodropout", dict(generator="resnet_9blocks", norm="instance", dropout=False),
     lambda: RefResnet(3, 3, 9, norm="instance")),
    ("G_resnet_6blocks_batch_dropout", dict(generator="resnet_6blocks", norm="batch", dropout=True),
     lambda: RefResnet(3, 3, 6, norm="batch", dropout=True)),
    ("G_unet_256_batch_dropout", dict(generator="unet_256", norm="batch", dropout=True),
     lambda: RefUnet(3, 3, 8, norm="batch", dropout=True)),
    ("G_unet_128_instance_nodropout", dict(generator="unet_128", norm="instance", dropout=False),
     lambda: RefUnet(3, 3, 7, norm="instance")),
])
def test_reference_weights_give_reference_outputs(tmp_path, name, arch, ref):
    sd = _reference_state(name)
    path = tmp_path / "latest_net_G.pth"
    torch.save(sd, path)
    ours = load_generator(path, **arch)
    theirs = ref()
    theirs.load_state_dict(sd)  # strict: the layouts agree key for key
    theirs.eval()
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x.clone()), atol=1e-5)


def test_reference_mismatch_names_the_setting(tmp_path):
    net = ResnetGenerator(n_blocks=9, ngf=16, norm="instance", dropout=True)
    mapping = reference_key_map(net)
    torch.save({mapping[k]: v for k, v in net.state_dict().items()}, tmp_path / "latest_net_G_A.pth")
    with pytest.raises(CheckpointError, match=r"do not fit generator=resnet_9blocks generator.ngf=16 "
                       r"generator.norm=instance generator.dropout=False; they fit generator=resnet_9blocks "
                       r"generator.ngf=16 generator.norm=instance generator.dropout=true"):
        load_generator(tmp_path / "latest_net_G_A.pth", generator="resnet_9blocks", ngf=16, norm="instance",
                       dropout=False)
    with pytest.raises(CheckpointError, match="they fit generator=resnet_9blocks"):
        load_generator(tmp_path / "latest_net_G_A.pth", generator="unet_256", ngf=16)
    torch.save({"model.0.weight": torch.zeros(3)}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="match none of the reference generators"):
        load_generator(tmp_path / "odd.pth", generator="resnet_9blocks")
    with pytest.raises(ConfigError, match="does not record its architecture"):
        load_generator(tmp_path / "latest_net_G_A.pth")


def test_safetensors_and_dataparallel_prefix(tmp_path):
    from safetensors.torch import save_file

    net = init_weights(ResnetGenerator(n_blocks=6, ngf=8))
    mapping = reference_key_map(net)
    sd = {mapping[k]: v.contiguous() for k, v in net.state_dict().items()}
    save_file(sd, tmp_path / "g.safetensors")
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "dp.pth")
    x = torch.randn(1, 3, 32, 32)
    for path in ("g.safetensors", "dp.pth"):
        G = load_generator(tmp_path / path, generator="resnet_6blocks", ngf=8)
        with torch.no_grad():
            assert torch.allclose(G(x), net.eval()(x), atol=1e-6)
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_generator(tmp_path / "bad.safetensors", generator="resnet_6blocks")


# ---------------------------------------------------------------- tiling


def _seam_score(tiled: torch.Tensor, whole: torch.Tensor) -> float:
    """The largest column-to-column jump of the tiling error, relative to the image's own mean gradient.

    A seam is a discontinuity that the untiled output does not have; content alone scores 0.
    """
    error = tiled - whole
    jumps = (error[..., 1:] - error[..., :-1]).abs().mean(dim=(0, 1, 2))
    natural = (whole[..., 1:] - whole[..., :-1]).abs().mean()
    return float(jumps.max() / natural)


def test_tiles_blend_without_seams():
    torch.manual_seed(0)
    # Batch norm in eval mode: each output pixel depends on its neighbourhood only, so tiles can only differ
    # from the whole image near their borders (where they were padded), which is what blending must hide.
    G = init_weights(ResnetGenerator(n_blocks=2, ngf=8, norm="batch"), "orthogonal", 1.0).eval()
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 96), torch.linspace(-1, 1, 320), indexing="ij")
    x = torch.stack([torch.sin(3 * xx + yy), torch.cos(2 * yy), xx * yy]).unsqueeze(0) * 0.8
    cpu = torch.device("cpu")
    whole = Translator(G, device=cpu, tile_size=4096)(x)
    blended = Translator(G, device=cpu, tile_size=128, tile_overlap=48)(x)
    hard = Translator(G, device=cpu, tile_size=128, tile_overlap=0)(x)
    assert blended.shape == hard.shape == whole.shape == (1, 3, 96, 320)
    assert _seam_score(hard, whole) > 0.3  # abutting tiles leave seams the metric sees ...
    assert _seam_score(blended, whole) < 0.05  # ... blended overlaps leave none
    assert (blended - whole).abs().mean() < 0.01


# ---------------------------------------------------------------- CLI and export


def _infer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, str(ROOT / "infer.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_cli_exit_codes(p2p_run, messy, tmp_path):
    clean = tmp_path / "clean"
    write_image(clean / "a.png", (50, 30))
    ok = _infer(f"checkpoint={p2p_run}", f"input={clean}", f"output={tmp_path / 'o1'}", "quiet=true", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "converted 1, skipped 0 existing, failed 0" in ok.stderr
    assert ok.stderr.strip().splitlines()[-1] == f"  output: {tmp_path / 'o1'}"  # where the results went
    some = _infer(f"checkpoint={p2p_run}", f"input={messy}", f"output={tmp_path / 'o2'}", "quiet=true", cwd=tmp_path)
    assert some.returncode == 1 and "failed: " in some.stderr and "fake.jpg" in some.stderr
    fatal = _infer(f"checkpoint={tmp_path / 'missing.pt'}", f"input={clean}", f"output={tmp_path / 'o3'}",
                   cwd=tmp_path)
    assert fatal.returncode == 2 and "Traceback" not in fatal.stderr and "missing.pt" in fatal.stderr
    inside = _infer(f"checkpoint={p2p_run}", f"input={clean}", f"output={clean / 'x'}", cwd=tmp_path)
    assert inside.returncode == 2 and "allow_inplace" in inside.stderr
    net = ResnetGenerator(n_blocks=6, ngf=8, norm="instance")
    torch.save({v: net.state_dict()[k] for k, v in reference_key_map(net).items()}, tmp_path / "latest_net_G_A.pth")
    wrong = _infer(f"checkpoint={tmp_path / 'latest_net_G_A.pth'}", "generator=resnet_6blocks", "generator.ngf=8",
                   "generator.norm=batch", f"input={clean}", f"output={tmp_path / 'o4'}", cwd=tmp_path)
    assert wrong.returncode == 2 and "generator.norm=instance" in wrong.stderr
    right = _infer(f"checkpoint={tmp_path / 'latest_net_G_A.pth'}", "generator=resnet_6blocks", "generator.ngf=8",
                   "generator.norm=instance", f"input={clean}", f"output={tmp_path / 'o5'}", cwd=tmp_path)
    assert right.returncode == 0, right.stderr
    assert not list(tmp_path.glob("outputs"))  # infer.py leaves no Hydra folders behind


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch(p2p_run, tmp_path, fmt):
    from translate.inference.export import export_generator

    G = load_generator(p2p_run)
    path = export_generator(G, tmp_path / f"g.{fmt}", fmt)
    x = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        expected = G(x).numpy()
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"image": x.numpy()})[0]
        meta = session.get_modelmeta().custom_metadata_map
        assert meta["stride"] == "64"
    else:
        got = torch.jit.load(str(path))(x).detach().numpy()
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


# ---------------------------------------------------------------- regressions from review


def test_tiny_images_duplicates_and_list_escapes(cyc_run, tmp_path):
    src = tmp_path / "src"
    write_image(src / "dot.png", (3, 3), seed=1)
    write_image(src / "a.png", (20, 12), seed=2)
    write_image(src / "a.jpg", (20, 12), seed=3)
    G = load_generator(cyc_run, direction="BtoA")  # ResNet with instance norm: 3x3 would collapse to 1x1
    s = translate_files(G, src, tmp_path / "out", format="png", quiet=True)
    assert s.converted == 2 and _size(tmp_path / "out" / "dot.png") == (3, 3)
    assert len(s.failed) == 1 and "is also the output of" in s.failed[0][1]
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "l.txt").write_text("../src/a.png\n")
    s = translate_files(G, tmp_path / "lists" / "l.txt", tmp_path / "out2", quiet=True)
    assert s.converted == 1 and (tmp_path / "out2" / "a.png").is_file()  # never outside the output folder
    with pytest.raises(ConfigError, match="tile_overlap=-1"):
        translate_files(G, src, tmp_path / "out3", tile_overlap=-1, quiet=True)


def test_pre_0_4_instance_norm_statistics_are_ignored(tmp_path):
    net = init_weights(ResnetGenerator(n_blocks=6, ngf=8, norm="instance"))
    mapping = reference_key_map(net)
    sd = {mapping[k]: v for k, v in net.state_dict().items()}
    sd["model.2.running_mean"] = torch.zeros(8)  # what InstanceNorm saved before PyTorch 0.4
    sd["model.2.running_var"] = torch.ones(8)
    torch.save(sd, tmp_path / "old_net_G.pth")
    G = load_generator(tmp_path / "old_net_G.pth", generator="resnet_6blocks", ngf=8)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(G(x), net.eval()(x), atol=1e-6)
