"""Copy the colour photographs bundled with scikit-image, scikit-learn (and matplotlib) into a folder (no download).

    pip install scikit-image scikit-learn
    python examples/bundled_photos.py datasets/photos

They make a small real-photo set for `translate datasets sketch` (see the docs' "Proof on real
photos"). Synthetic, microscopy and astronomy images are left out.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SKIMAGE = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png"]
SKLEARN = ["china.jpg", "flower.jpg"]


def main(out: str) -> None:
    try:
        import skimage.data
        import sklearn.datasets
    except ImportError:
        sys.exit("error: needs scikit-image and scikit-learn (pip install scikit-image scikit-learn)")
    sources = [Path(skimage.data.__file__).parent / n for n in SKIMAGE]
    sources += [Path(sklearn.datasets.__file__).parent / "images" / n for n in SKLEARN]
    try:  # one more if matplotlib is installed
        import matplotlib

        sources.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    except ImportError:
        pass
    Path(out).mkdir(parents=True, exist_ok=True)
    for src in sources:
        if not src.is_file():
            sys.exit(f"error: {src}: not found (a different scikit-image/scikit-learn version?)")
        shutil.copy2(src, Path(out) / src.name)
    print(f"copied {len(sources)} photos to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/bundled_photos.py OUT")
    main(sys.argv[1])
