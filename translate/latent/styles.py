"""Style codes for inference with a generator that takes one (``model=bicycle``): which outputs each input
gets under ``infer.py style.*``.

- ``samples=K``: K codes drawn from ``seed`` (the same K for every input, so ``_s0`` is one style throughout);
- ``reference=PHOTO`` (or a list): the style the encoder E reads off each photo (its mean code);
- ``truncation=psi``: every code pulled towards the mean style (z' = psi z; in AdaIN mode w' = w_avg + psi
  (w - w_avg), one psi per level possible);
- ``mix=L`` (AdaIN mode): per input one grid whose cell (r, c) takes the decoder levels below L (coarse) from
  style r and the rest (fine) from style c; the first row and column show the styles alone.

A code is what the generator takes: z [nz], or per-level w [num_layers, w_dim] in AdaIN mode (``styled``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.utils import make_grid

from translate.core.errors import ConfigError
from translate.core.schema import Count, check_dataclass
from translate.data.images import read_picture, resize_images, to_model_input
from translate.latent.sampling import LatentEdit, edited
from translate.models.base import fixed_latents, takes_style


@dataclass
class StyleOptions:
    """``infer.py style.*`` (see ``conf/infer.yaml``)."""

    samples: Count = 0
    seed: int = 0
    truncation: Any = 1.0
    reference: Any = None
    mix: int | None = None
    grid: bool = False

    def __post_init__(self) -> None:
        check_dataclass(vars(self), StyleOptions, "style")

    @classmethod
    def from_config(cls, node: Any) -> StyleOptions:
        """From the ``style`` node of ``conf/infer.yaml`` (None: nothing asked); an unknown key is a ConfigError."""
        node = dict(node or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(node) - known)
        if unknown:
            raise ConfigError(f"style.{unknown[0]} is not a style setting (one of {', '.join(sorted(known))})")
        return cls(**node)

    @property
    def requested(self) -> bool:
        """Whether anything beyond the mean style is asked for."""
        return bool(self.samples or self.reference or self.mix is not None or self.truncation != 1.0)

    def references(self) -> list[Path]:
        if not self.reference:
            return []
        return [Path(p) for p in ([self.reference] if isinstance(self.reference, (str, Path)) else self.reference)]


@dataclass(frozen=True)
class Style:
    """One output per input: its file name suffix and the code."""

    name: str
    code: torch.Tensor


def is_styled(G: nn.Module) -> bool:
    """Whether G's codes are per-level w (AdaIN mode): mixing and per-level truncation need it."""
    return bool(getattr(G, "styled", False))


def _check_generator(G: nn.Module, opts: StyleOptions) -> None:
    if not takes_style(G):
        raise ConfigError("style.*: this generator takes no style code (train model=bicycle for many outputs per "
                          "input; pix2pix's only noise is dropout: norm_mode=train)")
    if opts.mix is not None:
        if not is_styled(G):
            raise ConfigError("style.mix needs per-level styles: a generator with generator.z_inject=adain")
        if not 1 <= opts.mix < G.num_levels:
            raise ConfigError(f"style.mix={opts.mix}: the crossover level must be 1 .. {G.num_levels - 1} (levels "
                              "below it are coarse)")
    if not isinstance(opts.truncation, (int, float)) and not is_styled(G):
        raise ConfigError("style.truncation per level needs generator.z_inject=adain; give one number")


def as_code(G: nn.Module, z: torch.Tensor, truncation: Any, edits: Sequence[LatentEdit] = ()) -> torch.Tensor:
    """The code G takes for latent z [nz], edited along attribute axes (in z, or in w before truncation) and
    truncated: z' = psi z, or per-level w pulled towards w_avg."""
    z = edited(z, edits, "z")
    if not is_styled(G):
        if any(e.space == "w" for e in edits):
            raise ConfigError("these axes live in w: they were fitted for a generator with generator.z_inject=adain")
        return z * float(truncation)
    with torch.no_grad():
        w = edited(G.map(z[None].to(G.w_avg)), edits, "w")
        return G.truncate(G.per_layer(w), truncation)[0]


def encoder_input(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images [N, C, H, W] as the style encoder saw them in training: size x size (the training crop)."""
    return resize_images(x, (size, size))


def read_reference(path: Path, channels: int, size: int) -> torch.Tensor:
    """A reference photo as the encoder sees it: [1, C, size, size] in [-1, 1] (the training crop size)."""
    if not path.is_file():
        raise ConfigError(f"style.reference={path}: no such file")
    return encoder_input(to_model_input(read_picture(path), channels)[None], size)


def encode_references(E: nn.Module | None, paths: list[Path], *, channels: int, size: int) -> list[Style]:
    """One style per reference photo, named after it: E's mean code."""
    if E is None:
        raise ConfigError("style.reference: this checkpoint has no style encoder")
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"style.reference: two references share a name ({', '.join(stems)}); their outputs would "
                          "collide")
    E = E.eval()
    with torch.no_grad():
        return [Style(f"ref_{p.stem}", E(read_reference(p, channels, size).to(next(E.parameters())))[0][0])
                for p in paths]


def plan_styles(G: nn.Module, opts: StyleOptions, *, encoder: nn.Module | None = None, channels: int = 3,
                image_size: int = 256, edits: Sequence[LatentEdit] = ()) -> list[Style]:
    """The styles every input is translated with, as G's codes (checked before any work), each moved along
    ``edits`` (attribute axes of ``translate.latent.axes``)."""
    _check_generator(G, opts)
    latents = [Style(f"s{i}", z) for i, z in enumerate(fixed_latents(opts.samples, G.nz, opts.seed))]
    references = encode_references(encoder, opts.references(), channels=channels, size=image_size) \
        if opts.references() else []
    chosen = latents + [Style(s.name, s.code.cpu()) for s in references]
    if not chosen:  # only a truncation: the mean style, which truncation does not move
        chosen = [Style("mean", torch.zeros(G.nz))]
    if opts.mix is not None and len(chosen) < 2:
        raise ConfigError("style.mix needs at least 2 styles (style.samples=K or several style.reference)")
    return [Style(s.name, as_code(G, s.code, opts.truncation, edits)) for s in chosen]


def mixed_code(coarse: torch.Tensor, fine: torch.Tensor, level: int) -> torch.Tensor:
    """Per-level w taking levels below ``level`` from ``coarse`` and the rest from ``fine``."""
    return torch.cat([coarse[:level], fine[level:]])


def run_with_code(G: nn.Module, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """G(x) with one code for the whole batch."""
    code = code.to(x.device, x.dtype).expand(len(x), *code.shape)
    return G(x, code, input_is_w=True) if is_styled(G) else G(x, code)


@dataclass(frozen=True)
class StylePlan:
    """What each input becomes: one output per style (``name_<style>``), all styles side by side in one image
    (``grid``: ``name_styles``), or a style-mixing grid (``mix``: ``name_mix``). Without styles (``styles``
    empty) the one output of the mean style, named as the input."""

    styles: tuple[Style, ...] = ()
    mix: int | None = None
    grid: bool = False

    @property
    def suffixes(self) -> list[str]:
        """The file name suffix of each output of one input ("" is the input's own name)."""
        if not self.styles:
            return [""]
        if self.mix is not None:
            return ["_mix"]
        return ["_styles"] if self.grid else [f"_{s.name}" for s in self.styles]

    def codes(self) -> list[torch.Tensor | None]:
        """The codes to run each batch with (None: the mean style): the styles, then for ``mix`` every (coarse
        row, fine column) pair, row by row."""
        if not self.styles:
            return [None]
        codes = [s.code for s in self.styles]
        if self.mix is not None:
            codes += [mixed_code(r, c, self.mix) for r in codes[: len(self.styles)] for c in codes[: len(self.styles)]]
        return codes

    def compose(self, images: list[torch.Tensor], source: torch.Tensor) -> list[torch.Tensor]:
        """One input's outputs from its images under ``codes()`` ([C, H, W] each, in [-1, 1]); ``source`` is the
        input (the mixing grid's corner)."""

        if self.mix is None and not self.grid:
            return images
        k = len(self.styles)
        if self.grid:
            return [make_grid(torch.stack(images[:k]), nrow=k, padding=2, pad_value=1.0)]
        corner = source.expand(images[0].shape[0], -1, -1) if source.shape[0] == 1 else source[: images[0].shape[0]]
        cells = [corner, *images[:k]]
        for r in range(k):
            cells += [images[r], *images[k + r * k: k + (r + 1) * k]]
        return [make_grid(torch.stack(cells), nrow=k + 1, padding=2, pad_value=1.0)]


def style_plan(G: nn.Module, opts: StyleOptions, **kwargs: Any) -> StylePlan:
    """The plan for ``opts`` (the mean style alone when nothing is asked); ``kwargs`` go to ``plan_styles``."""
    if not opts.requested and not kwargs.get("edits"):
        return StylePlan()
    return StylePlan(tuple(plan_styles(G, opts, **kwargs)), opts.mix, opts.grid)
