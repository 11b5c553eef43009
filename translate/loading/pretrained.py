"""The reference pix2pix and CycleGAN models, by name: ``translate pretrained list|download NAME``.

Weights come from the server the reference repository's download scripts use, into
``$TRANSLATE_CACHE/pretrained`` (default ``~/.cache/translate/pretrained``), through the same resumable, checked
download as the datasets. Each name knows its architecture, so ``checkpoint=pretrained:edges2shoes`` works in
``infer.py``, ``translate.evaluation.evaluate``, ``translate.inference.export`` and ``translate.apps.serve`` without generator flags. A
download is verified before it is kept: its size against the name's cap (before and while it is read), its
SHA-256 where one is recorded, and in every case that the file is a reference-format state dict that loads into
the named architecture (a truncated, oversized or different file, a translate training checkpoint included, is
deleted, never used). The SHA-256 of the first good file is then recorded beside it (``<file>.sha256``) and
checked on every later use: a file changed since is deleted.

Offline: ``archive=FILE`` takes a copy fetched by hand, ``mirror=URL`` (or $TRANSLATE_PRETRAINED_MIRROR) a base
URL or ``file://`` folder holding the same file names.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from translate.core.arguments import Arguments, Setting, parse_arguments
from translate.core.atomic import atomic_write_bytes
from translate.core.download import check_sha256, download_file, human_size, sha256_of
from translate.core.errors import CheckpointError, DataError, TranslateError, first_line
from translate.data.demo import cache_dir
from translate.loading.reference import is_reference_state_dict
from translate.loading.weights import read_state, reference_generator

PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{file}.pth"
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{file}.pth"
MIRROR_ENV = "TRANSLATE_PRETRAINED_MIRROR"
PREFIX = "pretrained:"


@dataclass(frozen=True)
class Pretrained:
    """One reference model: what it translates and the architecture its file was saved from.

    ``dataset``/``direction``: the reference dataset and the direction its test script runs it in (so that
    ``evaluate`` on that dataset feeds the right side). ``norm_mode``: pix2pix's test script runs the U-Net
    in train mode (batch statistics of the one image, dropout on), as the paper does; CycleGAN's instance
    norm is the same either way. ``canvas``: what a drawing for it looks like (ink on background)."""

    name: str
    family: str  # pix2pix | cyclegan
    about: str
    dataset: str
    direction: str = "AtoB"
    file: str | None = None  # the server's file name when it differs from ``name``
    sha256: str | None = None
    canvas: tuple[str, str] | None = None  # (ink, background) for models that take drawings

    @property
    def url(self) -> str:
        return (PIX2PIX_URL if self.family == "pix2pix" else CYCLEGAN_URL).format(file=self.file or self.name)

    @property
    def file_name(self) -> str:
        return f"{self.file or self.name}.pth"

    @property
    def generator(self) -> dict[str, object]:
        """The settings of the generator config group the weights were saved from."""
        if self.family == "pix2pix":  # unet_256, batch norm, dropout: the reference pix2pix defaults
            return {"name": "unet_256", "norm": "batch", "dropout": True}
        return {"name": "resnet_9blocks", "norm": "instance", "dropout": False}

    @property
    def max_bytes(self) -> int:
        """The largest file this name can be: its generator's weights (unet_256 with batch norm 54.4 M parameters,
        218 MB; resnet_9blocks 11.4 M, 46 MB) with room to spare; a larger download is refused."""
        return (256 if self.family == "pix2pix" else 64) * 2**20

    @property
    def norm_mode(self) -> str:
        return "train" if self.family == "pix2pix" else "eval"

    @property
    def architecture(self) -> str:
        g = self.generator
        return f"{g['name']}, {g['norm']} norm" + (", dropout" if g["dropout"] else "")


_INK = ("#000000", "#ffffff")
MODELS = {m.name: m for m in [
    Pretrained("edges2shoes", "pix2pix", "shoe edges -> shoe photo", "edges2shoes", canvas=_INK),
    Pretrained("sat2map", "pix2pix", "aerial photo -> map", "maps"),
    Pretrained("map2sat", "pix2pix", "map -> aerial photo", "maps", "BtoA"),
    Pretrained("facades_label2photo", "pix2pix", "facade labels -> facade photo", "facades", "BtoA"),
    Pretrained("day2night", "pix2pix", "day photo -> night photo", "night2day", "BtoA"),
    Pretrained("horse2zebra", "cyclegan", "horse -> zebra", "horse2zebra"),
    Pretrained("zebra2horse", "cyclegan", "zebra -> horse", "horse2zebra", "BtoA"),
    Pretrained("apple2orange", "cyclegan", "apple -> orange", "apple2orange"),
    Pretrained("orange2apple", "cyclegan", "orange -> apple", "apple2orange", "BtoA"),
    Pretrained("summer2winter_yosemite", "cyclegan", "summer -> winter (Yosemite)", "summer2winter_yosemite"),
    Pretrained("winter2summer_yosemite", "cyclegan", "winter -> summer (Yosemite)", "summer2winter_yosemite",
               "BtoA"),
    Pretrained("monet2photo", "cyclegan", "Monet painting -> photo", "monet2photo"),
    Pretrained("style_monet", "cyclegan", "photo -> Monet painting", "monet2photo", "BtoA"),
    Pretrained("style_cezanne", "cyclegan", "photo -> Cezanne painting", "cezanne2photo", "BtoA"),
    Pretrained("style_ukiyoe", "cyclegan", "photo -> ukiyo-e print", "ukiyoe2photo", "BtoA"),
    Pretrained("style_vangogh", "cyclegan", "photo -> Van Gogh painting", "vangogh2photo", "BtoA"),
    Pretrained("iphone2dslr_flower", "cyclegan", "phone photo -> DSLR photo (flowers)", "iphone2dslr_flower"),
    Pretrained("cityscapes_photo2label", "cyclegan", "street photo -> labels", "cityscapes"),
    Pretrained("cityscapes_label2photo", "cyclegan", "street labels -> photo", "cityscapes", "BtoA"),
    Pretrained("facades_photo2label", "cyclegan", "facade photo -> labels", "facades"),
    Pretrained("cyclegan_facades_label2photo", "cyclegan", "facade labels -> photo (CycleGAN)", "facades", "BtoA",
               file="facades_label2photo"),
    Pretrained("cyclegan_sat2map", "cyclegan", "aerial photo -> map (CycleGAN)", "maps", file="sat2map"),
    Pretrained("cyclegan_map2sat", "cyclegan", "map -> aerial photo (CycleGAN)", "maps", "BtoA", file="map2sat"),
]}


def pretrained_dir() -> Path:
    return cache_dir() / "pretrained"


def spec(name: str) -> Pretrained:
    if name not in MODELS:
        raise CheckpointError(f"pretrained:{name} is not a known model; known: {', '.join(MODELS)} "
                              "(translate pretrained list)")
    return MODELS[name]


def is_pretrained(checkpoint: str | Path) -> bool:
    return str(checkpoint).startswith(PREFIX)


def local_path(model: Pretrained, folder: Path | None = None) -> Path:
    return (folder or pretrained_dir()) / model.family / model.file_name


def download(name: str, *, folder: str | Path | None = None, archive: str | Path | None = None,
             mirror: str | None = None, force: bool = False, timeout: float = 30.0, progress: bool = True) -> Path:
    """The weights of ``name`` on disk (downloaded, or copied from ``archive``, when not there yet), verified."""
    model = spec(name)
    path = local_path(model, Path(folder) if folder else None)
    if path.is_file() and not force:
        _check_unchanged(model, path)
        return path
    path.unlink(missing_ok=True)
    if archive is not None:
        source = Path(archive).expanduser()
        if not source.is_file():
            raise DataError(f"{source}: no such file (archive=)")
        if source.stat().st_size > model.max_bytes:
            raise DataError(f"{source}: {human_size(source.stat().st_size)} is over the {human_size(model.max_bytes)} "
                            f"the {name} model can be; refused")
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        shutil.copyfile(source, part)
        if model.sha256:
            check_sha256(part, model.sha256)
        part.replace(path)
    else:
        base = mirror or os.environ.get(MIRROR_ENV)
        url = f"{base.rstrip('/')}/{model.family}/{model.file_name}" if base else model.url
        hint = (f"Fetch {model.url} by hand and give it as archive=FILE (translate pretrained download "
                f"{name} archive=FILE), or set {MIRROR_ENV}")
        download_file(url, path, sha256=model.sha256, timeout=timeout, progress=progress, offline_hint=hint,
                      max_bytes=model.max_bytes)
    _verify(model, path)
    return path


def _record(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _verify(model: Pretrained, path: Path) -> None:
    """Keep ``path`` only if it is a reference-format state dict (not a translate training checkpoint, not a
    pickle) that loads into the model's architecture, and record its SHA-256; any failure deletes it."""
    g = model.generator
    try:
        state = read_state(path)
        if not isinstance(state, dict) or "format_version" in state or not is_reference_state_dict(state):
            raise CheckpointError(f"{path}: not a reference {model.family} state dict")
        reference_generator(path, state, str(g["name"]), {"norm": g["norm"], "dropout": g["dropout"]})
    except Exception as e:  # noqa: BLE001 - whatever is wrong with it, the file goes
        path.unlink(missing_ok=True)
        _record(path).unlink(missing_ok=True)
        raise CheckpointError(f"{path}: {first_line(e).removeprefix(f'{path}: ')}; deleted, it is not the "
                              f"{model.name} model") from None
    atomic_write_bytes(_record(path), sha256_of(path).encode())


def _check_unchanged(model: Pretrained, path: Path) -> None:
    """The file is the one first verified (its recorded SHA-256); one without a record is verified now."""
    record = _record(path)
    if not record.is_file():
        _verify(model, path)
    elif sha256_of(path) != record.read_text().strip():
        path.unlink(missing_ok=True)
        record.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: changed since it was first verified (SHA-256 differs from {record.name}); "
                              f"deleted, run again to download {model.name} afresh")


def resolve(checkpoint: str | Path) -> tuple[Pretrained, Path]:
    """``pretrained:NAME`` -> its spec and local file (downloaded now if missing, else checked unchanged)."""
    name = str(checkpoint).removeprefix(PREFIX)
    model = spec(name)
    path = local_path(model)
    if not path.is_file():
        print(f"{checkpoint}: not in {path.parent} yet, downloading", file=sys.stderr)
        return model, download(name)
    _check_unchanged(model, path)
    return model, path


# ----------------------------------------------------------------------------------------------- CLI
def _list(folder: Path | None) -> None:
    print(f"{'name':30} {'family':9} {'translates':38} {'architecture':32} on disk")
    for m in MODELS.values():
        here = "yes" if local_path(m, folder).is_file() else "-"
        print(f"{m.name:30} {m.family:9} {m.about:38} {m.architecture:32} {here}")


FOLDER = Setting(None, "where the weights are kept (null: $TRANSLATE_CACHE/pretrained)", kind=str)
ACTIONS = {
    "list": Arguments("translate pretrained list", (), {"dir": FOLDER},
                      "the models this command knows and whether they are on disk"),
    "download": Arguments("translate pretrained download", ("name",), {
        "dir": FOLDER,
        "archive": Setting(None, "a local copy of the .pth file instead of downloading", kind=str),
        "mirror": Setting(None, f"base URL with <family>/<file>.pth (or set {MIRROR_ENV})", kind=str),
        "force": Setting(False, "download again even when the file is there"),
        "timeout": Setting(30.0, "seconds to wait for the server")}, "fetch (or copy) a model's weights and check them"),
}


def main(argv: list[str] | None = None) -> int:
    """``translate pretrained list|download NAME [key=value ...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ACTIONS:
        asked = argv[:1] in (["-h"], ["--help"])
        lines = ["usage: translate pretrained list|download NAME [key=value ...]      translate pretrained X --help: "
                 "its settings", "", *(f"  {name:<8}  {spec.about}" for name, spec in ACTIONS.items())]
        print("\n".join(lines), file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    spec = ACTIONS[argv[0]]
    if argv[1:2] in (["-h"], ["--help"]):
        print(spec.help())
        return 0
    try:
        args = parse_arguments(argv[1:], spec)
        folder = Path(args["dir"]).expanduser() if args["dir"] else None
        if argv[0] == "list":
            _list(folder)
        else:
            path = download(args["name"], folder=folder, archive=args["archive"], mirror=args["mirror"],
                            force=args["force"], timeout=args["timeout"])
            print(f"{args['name']}: {path} (use checkpoint=pretrained:{args['name']})")
    except TranslateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
