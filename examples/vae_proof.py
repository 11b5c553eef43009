"""The docs' VAE figures: ``python examples/vae_proof.py [STEPS]``.

Trains ``model=vae`` on the face demo (``data=demo_faces``: 6,000 procedurally drawn faces, 64x64, no
download), then writes, from the run's last checkpoint: 64 samples (codes from N(0, I) through the decoder,
``translate generate``) as ``docs/vae_faces_samples.png``; the KL and reconstruction curves
(``translate plot``) as ``docs/vae_faces_curves.png``; the val faces' codes projected on their
two principal axes, coloured by hair colour (``translate codes``), as
``docs/vae_faces_latent.png``; and the last reconstruction grid (val input | reconstruction) as
``docs/vae_faces_reconstructions.png``. Prints the last logged losses and validation metrics.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "runs" / "proof_vae"
DOCS = ROOT / "docs"


def python(*args: str) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT)


def main(steps: int = 3000) -> None:
    if not (RUN / "checkpoints" / "last.pt").is_file():
        python("train.py", "model=vae", "data=demo_faces", f"trainer.max_steps={steps}", "trainer.val_every=500",
               "logger=none", f"run_dir={RUN}")
    samples = ROOT / "runs" / "proof_vae_samples"
    python("-m", "translate.latent.generate", f"checkpoint={RUN}", "n=64", "seed=0", f"output={samples}", "overwrite=true")
    shutil.copy(samples / "grid.png", DOCS / "vae_faces_samples.png")
    python("-m", "translate.training.plot", str(RUN), f"output={DOCS / 'vae_faces_curves.png'}",
           "keys=[loss/G/kl,loss/G/rec,val/l1,val/psnr]")
    python("-m", "translate.latent.plot", str(RUN), "label=hair_colour", f"output={DOCS / 'vae_faces_latent.png'}")
    last_grid = max((RUN / "samples").glob("*.png"))
    shutil.copy(last_grid, DOCS / "vae_faces_reconstructions.png")
    records = [json.loads(line) for line in (RUN / "metrics.jsonl").read_text().splitlines() if line.strip()]
    for key in ("loss/G/kl", "loss/G/rec", "val/l1", "val/psnr", "val/ssim"):
        seen = [(r["step"], r[key]) for r in records if key in r]
        if seen:
            print(f"{key}: " + ", ".join(f"{v:.4f} (step {s})" for s, v in (seen[0], seen[len(seen) // 2], seen[-1])))
    print(f"reconstructions: {last_grid.name}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
