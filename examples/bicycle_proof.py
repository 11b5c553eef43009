"""The docs' BicycleGAN figures on real photos: ``python examples/bicycle_proof.py RUN DATA OUT``.

RUN is a ``model=bicycle`` run trained on the proof set (docs, "Proof on real photos"), DATA its aligned
dataset (``datasets/sketch2photo``). Through ``infer.py`` alone, as a user would: for a few val sketches one
row of 8 styles (``style.samples=8 style.grid=true``), a style-mixing grid (``style.mix``) and the styles read
off reference photos (``style.reference``). Writes OUT/proof_bicycle_{styles,mix,reference}.png.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SKETCHES = ["china_024", "astronaut_038", "motorcycle_left_003"]
REFERENCES = ["coffee_020", "flower_012", "rocket_007", "chelsea_030"]


def halves(pair: Path, folder: Path) -> tuple[Path, Path]:
    """The sketch (left) and photo (right) of an aligned AB image, as files."""
    with Image.open(pair) as im:
        w, h = im.size
        a, b = im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, w, h))
        sketch, photo = folder / "A" / pair.name, folder / "B" / pair.name
        for image, path in ((a, sketch), (b, photo)):
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)
    return sketch, photo


def infer(run: Path, inputs: Path, output: Path, *settings: str) -> None:
    command = [sys.executable, str(ROOT / "infer.py"), f"checkpoint={run}", f"input={inputs}", f"output={output}",
               "quiet=true", "overwrite=true", *settings]
    subprocess.run(command, check=True)


def stack(paths: list[Path], out: Path, pad: int = 4) -> None:
    """Images one below the other on white."""
    images = [Image.open(p).convert("RGB") for p in paths]
    width = max(i.width for i in images)
    canvas = Image.new("RGB", (width, sum(i.height for i in images) + pad * (len(images) - 1)), "white")
    y = 0
    for image in images:
        canvas.paste(image, (0, y))
        y += image.height + pad
    canvas.save(out)


def beside(first: Path, second: Path, out: Path, pad: int = 4) -> None:
    a, b = Image.open(first).convert("RGB"), Image.open(second).convert("RGB")
    canvas = Image.new("RGB", (a.width + pad + b.width, max(a.height, b.height)), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width + pad, 0))
    canvas.save(out)


def main(run: str, data: str, out: str) -> None:
    run_dir, data_dir, out_dir = Path(run), Path(data), Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sketches = [halves(data_dir / "val" / f"{name}.png", tmp / "val") for name in SKETCHES]
        refs = [halves(data_dir / "val" / f"{name}.png", tmp / "ref")[1] for name in REFERENCES]
        inputs = tmp / "val" / "A"
        infer(run_dir, inputs, tmp / "styles", "style.samples=8", "style.grid=true", "style.seed=0")
        rows = []
        for (sketch, photo) in sketches:
            row = tmp / f"row_{sketch.stem}.png"
            beside(sketch, tmp / "styles" / f"{sketch.stem}_styles.png", row)
            rows.append(row)
        stack(rows, out_dir / "proof_bicycle_styles.png")
        infer(run_dir, sketches[0][0], tmp / "mix", "style.samples=4", "style.mix=3", "style.seed=1")
        Image.open(tmp / "mix" / f"{sketches[0][0].stem}_mix.png").save(out_dir / "proof_bicycle_mix.png")
        infer(run_dir, inputs, tmp / "ref", f"style.reference=[{','.join(str(r) for r in refs)}]", "style.grid=true")
        rows = []
        for sketch, _ in sketches:
            row = tmp / f"ref_{sketch.stem}.png"
            beside(sketch, tmp / "ref" / f"{sketch.stem}_styles.png", row)
            rows.append(row)
        header = tmp / "header.png"
        refs_row = tmp / "refs_row.png"
        stack_horizontally(refs, refs_row)
        beside(_blank_like(sketches[0][0], tmp), refs_row, header)
        stack([header, *rows], out_dir / "proof_bicycle_reference.png")
    print(f"wrote {out_dir}/proof_bicycle_{{styles,mix,reference}}.png")


def stack_horizontally(paths: list[Path], out: Path, pad: int = 2) -> None:
    images = [Image.open(p).convert("RGB") for p in paths]
    canvas = Image.new("RGB", (sum(i.width for i in images) + pad * (len(images) + 1), max(i.height for i in images)
                               + 2 * pad), "white")
    x = pad
    for image in images:
        canvas.paste(image, (x, pad))
        x += image.width + pad
    canvas.save(out)


def _blank_like(path: Path, folder: Path) -> Path:
    with Image.open(path) as im:
        blank = Image.new("RGB", im.size, "white")
    out = folder / "blank.png"
    blank.save(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[0])
    main(*sys.argv[1:])
