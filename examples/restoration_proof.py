"""The docs' restoration figures: ``python examples/restoration_proof.py [STEPS] [KIND ...]``.

For each of the experiments deblur and inpaint (L1 alone), deblur_gan, denoise and inpaint_gan (pix2pix): a short CPU run on
the proof photos (``datasets/photos_split``, docs "Restoration"), then on every val crop the PSNR/SSIM of
the corrupted input and of the restored output against the clean photo (the same corrupted copies: the val
pairs are seeded per index; inpainting: the output outside the holes is the input, as ``infer.py`` writes
it), and a grid of 4 val crops: corrupted | restored | clean. Writes ``docs/restoration_<kind>.png`` and
prints a Markdown table. ``KIND ...``: only those experiments.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from translate.config.compose import build
from translate.data.files import sample_grid, save_image
from translate.data.inpainting import composited
from translate.evaluation.metrics import psnr, ssim
from translate.loading.generator import load_translation

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("deblur", "deblur_gan", "denoise", "inpaint", "inpaint_gan")


def train(kind: str, steps: int) -> Path:
    run = ROOT / "runs" / f"proof_{kind}"
    if not (run / "checkpoints" / "last.pt").is_file():
        subprocess.run([sys.executable, str(ROOT / "train.py"), f"experiment={kind}", f"trainer.max_steps={steps}",
                        "trainer.val_every=250", "logger=none", f"run_dir={run}"], check=True, cwd=ROOT)
    return run


@torch.no_grad()
def measure(run: Path) -> tuple[dict[str, float], torch.Tensor]:
    loaded = load_translation(run)
    G = loaded.module.eval()
    data = build(loaded.config.data)
    val = data.val_dataset()
    scores = {"input_psnr": [], "input_ssim": [], "output_psnr": [], "output_ssim": []}
    shown = []
    for i in range(len(val)):
        item = val[i]
        a, b = item["A"][None], item["B"][None]
        out = G(a).clamp(-1, 1)
        if a.shape[1] == out.shape[1] + 1:  # inpainting: what infer.py delivers, the input outside the holes
            out = composited(out[0], a[0])[None]
        corrupted = a[:, :3]
        for name, image in (("input", corrupted), ("output", out)):
            scores[f"{name}_psnr"].append(psnr(image, b).clamp(max=100))
            scores[f"{name}_ssim"].append(ssim(image, b))
        if len(shown) < 4 and i % 10 == 3:
            shown.append((corrupted, out, b))
    mean = {k: float(torch.cat(v).mean()) for k, v in scores.items()}
    grid = sample_grid([torch.cat([s[k] for s in shown]) for k in range(3)])
    return mean | {"n": len(val)}, grid


def main(steps: int = 1200, kinds: tuple[str, ...] = KINDS) -> None:
    rows = []
    for kind in kinds:
        run = train(kind, steps)
        result, grid = measure(run)
        save_image(grid, ROOT / "docs" / f"restoration_{kind}.png")
        rows.append(f"| {kind} | {result['n']} | {result['input_psnr']:.2f} dB / {result['input_ssim']:.3f} | "
                    f"{result['output_psnr']:.2f} dB / {result['output_ssim']:.3f} | "
                    f"{result['output_psnr'] - result['input_psnr']:+.2f} dB / "
                    f"{result['output_ssim'] - result['input_ssim']:+.3f} |")
    print("| experiment | val crops | corrupted input: PSNR / SSIM | restored | gain |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1200, tuple(sys.argv[2:]) or KINDS)
