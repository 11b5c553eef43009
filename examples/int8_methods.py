"""How int8 is calibrated, chosen by measurement: ``python examples/int8_methods.py CHECKPOINT IMAGES [--size N]
[--out grid.png]``.

For a trained generator and a folder of its inputs, quantises with each calibration method of ``METHODS``
(NNCF's presets; the first and last convolutions, the normalisation layers, the residual sums and the
transposed convolutions kept in floating point, one after another; those in fp32 or bf16), calibrated on
three quarters of the images and checked on the held-out quarter as ``infer.py backend=openvino precision=int8``
does, and prints each method's agreement with fp32 (PSNR, SSIM, max |diff|) and its speed (ms per image, batch 1,
median of 10 after warm-up) beside OpenVINO fp32 and bf16 and torch fp32 and bf16. ``--out`` writes a grid:
input | torch fp32 | OpenVINO int8 (the shipped method) | |difference| x 10, for the first held-out images.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from translate.core.errors import ConfigError  # noqa: E402
from translate.inference.convert import (  # noqa: E402
    CALIBRATION_IMAGES,
    InferOptions,
    _model_inputs,
    calibration_split,
    spread,
)
from translate.inference.inputs import collect_inputs  # noqa: E402
from translate.inference.openvino import Int8Target, agreement_of, compiled_generator  # noqa: E402
from translate.loading.load import load  # noqa: E402

FIRST, SECOND = Int8Target().float_ops  # the shipped graphs: normalisation and residual sums, + transposed convs
FP32 = {"float_ops": ((),), "float_precision": "fp32"}  # int8 throughout but for what a method keeps, in fp32
METHODS = {  # each one a single method; the shipped Int8Target() tries the last two in order
    "performance": Int8Target(preset="performance", keep_ends=False, **FP32),
    "mixed": Int8Target(preset="mixed", keep_ends=False, **FP32),
    "performance, ends in fp": Int8Target(preset="performance", **FP32),
    "mixed, ends in fp": Int8Target(**FP32),
    "mixed, ends and normalisation in fp": Int8Target(**{**FP32, "float_ops": (("MVN",),)}),
    "+ residual sums in fp": Int8Target(**{**FP32, "float_ops": (FIRST,)}),
    "+ transposed convolutions in fp": Int8Target(**{**FP32, "float_ops": (SECOND,)}),
    "+ residual sums in fp, those in bf16": Int8Target(float_ops=(FIRST,)),
    "+ transposed convolutions in fp, those in bf16": Int8Target(float_ops=(SECOND,)),
}
SHIPPED = "shipped: the first of the last two that meets the target (40 dB, SSIM 0.99)"
ANY = {"min_psnr": 0.0, "min_ssim": 0.0}  # measure every method, refuse none


def ms_per_image(G, images: list[torch.Tensor]) -> float:
    with torch.inference_mode():
        G(images[0])
        times = []
        for x in (images * 10)[:10]:
            start = time.perf_counter()
            G(x)
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("images", type=Path)
    parser.add_argument("--size", type=int, default=None, help="resize inputs (shorter side) to this")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    G = load(args.checkpoint).module.eval()
    files = [p for p, _ in collect_inputs(args.images, recursive=True)[0]]
    inputs = _model_inputs(spread(files, CALIBRATION_IMAGES), G, InferOptions(resize=args.size), None)
    calibration, check = calibration_split(inputs)
    reference = [G(x).clamp(-1, 1) for x in check]
    rows, shipped = [], None
    with tempfile.TemporaryDirectory() as cache, torch.inference_mode():
        def bf16(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", torch.bfloat16):
                return G(x).float()

        pairs = [(bf16(x).clamp(-1, 1), r) for x, r in zip(check, reference)]
        rows.append(("torch bf16", agreement_of(pairs), ms_per_image(bf16, check)))
        rows.insert(0, ("torch fp32", agreement_of(list(zip(reference, reference))), ms_per_image(G, check)))
        for precision in ("fp32", "bf16"):
            compiled = compiled_generator(G, precision=precision, cache=Path(cache))
            pairs = [(compiled(x).clamp(-1, 1), r) for x, r in zip(check, reference)]
            rows.append((f"openvino {precision}", agreement_of(pairs), ms_per_image(compiled, check)))
        for name, target in [*((n, Int8Target(**{**vars(t), **ANY})) for n, t in METHODS.items()), (SHIPPED, Int8Target())]:
            try:
                compiled = compiled_generator(G, precision="int8", cache=Path(cache), calibration=calibration,
                                              check=check, target=target)
            except ConfigError as refused:
                print(f"{name}: {refused}")
                continue
            outputs = [compiled(x).clamp(-1, 1) for x in check]
            rows.append((f"openvino int8, {name}", agreement_of(list(zip(outputs, reference))),
                         ms_per_image(compiled, check)))
            shipped = outputs if name == SHIPPED else shipped
    print(f"{args.checkpoint}: {len(calibration)} calibration and {len(check)} held-out images, "
          f"{tuple(check[0].shape[-2:])} px, {torch.get_num_threads()} threads")
    print("| mode | PSNR dB | SSIM | max abs diff | ms/image | speed vs torch fp32 |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = rows[0][2]
    for name, a, ms in rows:
        print(f"| {name} | {a['psnr']:.1f} | {a['ssim']:.4f} | {a['max_abs_diff']:.3f} | {ms:.1f} | {base / ms:.2f}x |")
    if args.out and shipped is not None:  # refused: no grid of it
        write_grid(args.out, check[:4], reference[:4], shipped[:4])


def write_grid(path: Path, inputs, reference, int8) -> None:
    from torchvision.utils import save_image

    rows = []
    for x, r, q in zip(inputs, reference, int8):
        diff = ((q - r).abs() * 10).clamp(0, 2) - 1  # x10, in [-1, 1] like the images
        rows += [x[:, :3], r, q, diff]
    save_image(torch.cat(rows), path, nrow=4, normalize=True, value_range=(-1, 1), padding=2)
    print(f"wrote {path} (input | torch fp32 | openvino int8 | |difference| x 10)")


if __name__ == "__main__":
    main()
