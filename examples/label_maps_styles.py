"""SPADE's style encoder on held-out maps: ``python examples/label_maps_styles.py RUN HELDOUT OUT``.

RUN is a ``experiment=demo_labels model.style_encoder=true`` run, HELDOUT the held-out street scenes that
``examples/label_maps_proof.py`` renders (``OUT/heldout``). Through the commands a user runs:

- ``translate evaluate ... style.samples=8``: diversity over 8 styles per map (LPIPS between outputs, or their L1
  distance without LPIPS weights) beside the mean style's L1/PSNR/SSIM and segmentation score;
- ``translate infer ... style.samples=8 style.grid=true`` on 4 maps: OUT/styles.png (one row of 8 styles a map);
- ``translate infer ... style.reference=[photos]`` on the same maps: OUT/references.png (a row per map, in its
  colours, then a column per reference photo, the references on top), unless ``--no-reference`` (a model
  without a style encoder: pix2pixHD's instance-wise features draw styles but read no reference photo).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from translate.data.labels import PALETTES, read_label_map

ROOT = Path(__file__).resolve().parent.parent
MAPS = ["00003", "00017", "00042", "00101"]
REFERENCES = ["00005", "00060", "00120", "00150"]
HELDOUT = ["data=labels", "data.label_nc=7", "data.instances=true", "data.palette=street_scenes",
           "data.load_size=64", "data.crop_size=64"]


def translate(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "translate", *args], check=True, cwd=ROOT)


def stack(paths: list[Path], out: Path, pad: int = 4) -> None:
    images = [Image.open(p).convert("RGB") for p in paths]
    canvas = Image.new("RGB", (max(i.width for i in images), sum(i.height + pad for i in images) - pad), "white")
    y = 0
    for image in images:
        canvas.paste(image, (0, y))
        y += image.height + pad
    canvas.save(out)


def table(rows: list[list[Path | None]], out: Path, size: int = 64, pad: int = 2) -> None:
    """A grid of images (None: a blank cell)."""
    canvas = Image.new("RGB", (len(rows[0]) * (size + pad), len(rows) * (size + pad)), "white")
    for r, row in enumerate(rows):
        for c, path in enumerate(row):
            if path is not None:
                canvas.paste(Image.open(path).convert("RGB").resize((size, size)), (c * (size + pad), r * (size + pad)))
    canvas.save(out)


def coloured(label_map: Path, out: Path) -> Path:
    """The map in the demo's palette colours, as a PNG."""
    rgb = PALETTES["street_scenes"].colourise(read_label_map(label_map, 7))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(((rgb + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()).save(out)
    return out


def main() -> None:
    run, heldout, out = (Path(a).resolve() for a in sys.argv[1:4])
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "eval" / "metrics.json").is_file():
        translate("evaluate", f"checkpoint={run}", *HELDOUT, f"data.root={heldout}", "metrics.fid=false",
                  "metrics.lpips=null", "style.samples=8", f"output={out / 'eval'}")
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    maps = out / "maps"
    maps.mkdir(exist_ok=True)
    for name in MAPS:
        (maps / f"{name}.png").write_bytes((heldout / "val" / "label" / f"{name}.png").read_bytes())
    translate("infer", f"checkpoint={run}", f"input={maps}", f"output={out / 'styles'}", "style.samples=8",
              "style.grid=true", "quiet=true", "overwrite=true")
    stack([out / "styles" / f"{name}_styles.png" for name in MAPS], out / "styles.png")
    if "--no-reference" not in sys.argv:
        references(run, maps, heldout, out)
    keys = ("l1", "psnr", "ssim", "miou", "pixel_acc", "diversity", "diversity_l1", "random_l1")
    print(json.dumps({k: metrics.get(k) for k in keys}, indent=1))


def references(run: Path, maps: Path, heldout: Path, out: Path) -> None:
    """OUT/references.png: each map under each reference photo's style."""
    photos = [heldout / "val" / "image" / f"{name}.png" for name in REFERENCES]
    translate("infer", f"checkpoint={run}", f"input={maps}", f"output={out / 'references'}",
              f"style.reference=[{','.join(str(p) for p in photos)}]", "quiet=true", "overwrite=true")
    rows: list[list[Path | None]] = [[None, *photos]]
    for name in MAPS:
        outputs = sorted((out / "references").glob(f"{name}_ref_*.png"))
        rows.append([coloured(maps / f"{name}.png", out / "coloured" / f"{name}.png"), *outputs])
    table(rows, out / "references.png")


if __name__ == "__main__":
    main()
