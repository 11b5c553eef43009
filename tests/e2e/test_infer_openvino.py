"""backend=openvino: the same conversion path through an exported, OpenVINO-compiled generator (fp32, bf16, int8
with its agreement check), the graph cache, and one line for what the backend cannot serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_image
from PIL import Image

from translate.core.errors import ConfigError
from translate.inference.convert import translate_files
from translate.networks import ResnetGenerator, UnetGenerator, init_weights

pytest.importorskip("openvino")
pytest.importorskip("nncf")
ROOT = Path(__file__).resolve().parents[2]


def _resnet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return init_weights(ResnetGenerator(n_blocks=2, ngf=8, norm="instance")).eval()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Twelve smooth colour images of a few sizes, one with transparency, one 16-bit gray."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(10):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(small).resize((48 + 4 * (i % 3), 40), Image.BICUBIC).save(root / f"{i:02d}.png")
    colour = np.asarray(Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((44, 36), Image.BICUBIC))
    alpha = np.linspace(0, 255, 36 * 44).reshape(36, 44).astype(np.uint8)
    Image.fromarray(np.dstack([colour, alpha]), "RGBA").save(root / "alpha.png")
    Image.fromarray((np.linspace(0, 65535, 40 * 40).reshape(40, 40)).astype(np.uint16)).save(root / "deep.png")
    return root


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.float64)


def test_openvino_fp32_converts_as_torch_does(photos, tmp_path):
    G = _resnet()
    ours = translate_files(G, photos, tmp_path / "torch", quiet=True)
    theirs = translate_files(G, photos, tmp_path / "ov", quiet=True, backend="openvino", cache=str(tmp_path / "c"))
    assert ours.converted == theirs.converted == 12 and not theirs.failed
    assert theirs.backend == "backend openvino fp32" and "backend openvino fp32" in str(theirs)
    for path in sorted((tmp_path / "torch").iterdir()):
        other = tmp_path / "ov" / path.name
        a, b = Image.open(path), Image.open(other)
        assert (a.mode, a.size) == (b.mode, b.size)  # alpha and bit depth kept as torch keeps them
        assert np.abs(_pixels(path) - _pixels(other)).max() <= (257 if a.mode.startswith("I") else 1)


def test_the_graph_is_exported_once_per_weights(photos, tmp_path):
    cache = tmp_path / "cache"
    translate_files(_resnet(), photos, tmp_path / "a", quiet=True, backend="openvino", cache=str(cache))
    (first,) = cache.glob("*.onnx")
    stamp = first.stat().st_mtime_ns
    translate_files(_resnet(), photos, tmp_path / "b", quiet=True, backend="openvino", cache=str(cache))
    assert list(cache.glob("*.onnx")) == [first] and first.stat().st_mtime_ns == stamp  # reused
    translate_files(_resnet(seed=1), photos, tmp_path / "c", quiet=True, backend="openvino", cache=str(cache))
    assert len(list(cache.glob("*.onnx"))) == 2  # other weights, another graph
    # A cached graph is checked against the weights before use: another network's graph under this name (or a
    # damaged file) is exported again, never run.
    (second,) = set(cache.glob("*.onnx")) - {first}
    first.write_bytes(second.read_bytes())
    translate_files(_resnet(), photos, tmp_path / "d", quiet=True, backend="openvino", cache=str(cache))
    assert first.read_bytes() != second.read_bytes()
    assert np.abs(_pixels(tmp_path / "a" / "00.png") - _pixels(tmp_path / "d" / "00.png")).max() == 0
    first.write_bytes(b"not a graph")
    translate_files(_resnet(), photos, tmp_path / "e", quiet=True, backend="openvino", cache=str(cache))
    assert np.abs(_pixels(tmp_path / "a" / "00.png") - _pixels(tmp_path / "e" / "00.png")).max() == 0


def test_bf16_and_tiles(photos, tmp_path):
    G = _resnet()
    ref = translate_files(G, photos, tmp_path / "ref", quiet=True, tile_size=16, tile_overlap=4)
    s = translate_files(G, photos, tmp_path / "bf", quiet=True, backend="openvino", precision="bf16",
                        cache=str(tmp_path / "c"), tile_size=16, tile_overlap=4)
    assert s.converted == ref.converted == 12 and "openvino bf16" in s.backend
    diff = np.abs(_pixels(tmp_path / "ref" / "00.png") - _pixels(tmp_path / "bf" / "00.png"))
    assert 0 < diff.mean() < 4  # bf16: close, not identical


def _reference_weights(G: torch.nn.Module, folder: Path) -> Path:
    from translate.loading.reference import reference_key_map

    path = folder / "latest_net_G.pth"
    torch.save({v: G.state_dict()[k] for k, v in reference_key_map(G).items()}, path)
    return path


def _infer(*args: str) -> subprocess.CompletedProcess:
    """infer.py in its own process: a process that ran an int8 graph is not asked to start others (a subprocess
    started after one crashed the parent: OpenVINO 2026.4, AMX CPU; see translate.inference.convert._loader)."""
    return subprocess.run([sys.executable, str(ROOT / "infer.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.mark.slow
def test_int8_reports_its_agreement_or_refuses_with_exit_code_2(photos, tmp_path):
    G = init_weights(UnetGenerator(num_downs=5, ngf=8, norm="instance")).eval()
    common = [f"checkpoint={_reference_weights(G, tmp_path)}", "generator=unet_256", "generator.num_downs=5",
              "generator.ngf=8", "generator.norm=instance", "norm_mode=eval", f"input={photos}", "backend=openvino",
              "precision=int8", f"cache={tmp_path / 'c'}", "quiet=true"]
    ok = _infer(*common, f"output={tmp_path / 'int8'}", "int8_min_psnr=10", "int8_min_ssim=0")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "converted 12" in ok.stderr and "agreement with fp32 on 3 held-out images" in ok.stderr
    assert list((tmp_path / "c").glob("*int8*.xml"))  # cached; its agreement is measured on every use
    strict = _infer(*common, f"output={tmp_path / 'strict'}", "int8_min_psnr=99")
    assert strict.returncode == 2 and "Traceback" not in strict.stderr, strict.stderr[-2000:]
    assert "precision=int8: on 3 held-out images" in strict.stderr and "below the target (99 dB" in strict.stderr
    assert "use precision=bf16" in strict.stderr and not any((tmp_path / "strict").glob("*.png"))  # nothing written
    calib = tmp_path / "mine"
    for i in range(2):
        write_image(calib / f"{i}.png", (32, 32), seed=i)
    own = _infer(*common, f"output={tmp_path / 'own'}", "int8_min_psnr=10", "int8_min_ssim=0", f"calibration={calib}")
    assert own.returncode == 0 and "on 1 held-out images" in own.stderr, own.stderr[-2000:]
    few = _infer(*common, f"output={tmp_path / 'few'}", f"calibration={calib / '0.png'}")
    assert few.returncode == 2 and "1 readable image" in few.stderr


QUANTISED_INPUTS = """
import sys, torch
from pathlib import Path
from translate.inference.openvino import Int8Target, calibrate, exported_onnx, openvino_module
from translate.networks import ResnetGenerator, init_weights
torch.manual_seed(0)
G = init_weights(ResnetGenerator(n_blocks=2, ngf=8, norm="instance")).eval()
model = openvino_module().Core().read_model(exported_onnx(G, Path(sys.argv[1])))
images = [torch.rand(1, 3, 32, 32) * 2 - 1 for _ in range(4)]
for ops in ((), ("MVN", "Add")):
    quantised = calibrate(model.clone(), images, Int8Target(), ops)
    fed = [op.get_type_name() for op in quantised.get_ordered_ops() for i in op.inputs()
           if i.get_source_output().get_node().get_type_name() == "FakeQuantize"]
    print(ops, fed.count("MVN"), fed.count("Add"), fed.count("Convolution"))
"""


@pytest.mark.slow
def test_int8_keeps_normalisation_and_residual_sums_in_floating_point(tmp_path):
    """Instance norm divides its input's rounding error by the channel's spread: the shipped method quantises
    the convolutions' inputs and leaves what feeds the normalisation and the residual sums in floating point."""
    run = subprocess.run([sys.executable, "-c", QUANTISED_INPUTS, str(tmp_path)], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)  # its own process: see _infer
    assert run.returncode == 0, run.stderr[-2000:]
    everything, shipped = ([int(n) for n in line.split(")")[1].split()] for line in run.stdout.splitlines())
    assert everything[0] > 0 and everything[2] > 0  # without float_ops NNCF quantises what feeds instance norm
    assert shipped[0] == shipped[1] == 0 and shipped[2] > 0  # the shipped method: none of it, convolutions still


@pytest.mark.parametrize(("changes", "message"), [
    ({"precision": "int8"}, "precision=int8 needs backend=openvino"),
    ({"backend": "openvino", "norm_mode": "train"}, "norm_mode=train"),
    ({"backend": "openvino", "compile": True}, "compile=true is torch.compile"),
    ({"backend": "openvino", "precision": "fp16"}, "fp16 is CUDA only"),
])
def test_what_the_backend_cannot_do_is_one_line(photos, tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        translate_files(_resnet(), photos, tmp_path / "o", quiet=True, cache=str(tmp_path / "c"), **changes)


def test_a_style_code_is_refused(photos, tmp_path):
    from translate.networks.bicycle import LatentUnetGenerator

    G = LatentUnetGenerator(nz=4, num_downs=5, ngf=8)
    with pytest.raises(ConfigError, match="without a style code"):
        translate_files(G, photos, tmp_path / "o", quiet=True, backend="openvino", cache=str(tmp_path / "c"))


def test_without_openvino_it_says_how_to_install(photos, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[openvino\]"'):
        translate_files(_resnet(), photos, tmp_path / "o", quiet=True, backend="openvino", cache=str(tmp_path / "c"))
