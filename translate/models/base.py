"""The model contract: what the training loop, validation, sampling, inference and export need from a model.

A model family is one file in ``translate/models/`` (a ``TranslationModel`` subclass) plus one
``conf/model/*.yaml``; the loop never learns about a family by name. A model:

- declares its networks by role, each an attribute of the model under the name it is listed by:
  ``generators()`` (sampled, EMA-averaged, exported), ``discriminators()`` (frozen during the G phase) and
  ``auxiliaries()`` (trained, saved and DDP-wrapped like the others, but never averaged or exported: a
  projection head, a style encoder);
- says whether it trains on aligned pairs (``paired``) and which translations it offers (``translations``:
  direction -> generator, source and target batch keys; a one-sided unpaired model has one);
- groups its networks per optimizer (``optimizer_groups``) and says which losses step them (``phase_of``);
- computes one step as ``generate(batch)``, then its two phases in the order its reference takes them
  (``phases``, plain data on the class): ``d_step(batch, out)`` (total under ``loss/D``) and
  ``g_step(batch, out)`` (total under ``loss/G``), each returning named loss tensors whose total the loop
  backpropagates and steps before the next phase begins (a model without a discriminator returns a zero
  ``loss/D``; a phase with no optimizer steps nothing). Both phases see the same ``out``: under ``("G", "D")``
  D learns from the fakes made before G's update, as the references do (they must be detached there). The loop
  owns optimizers, backward passes, precision, EMA and schedules (after both phases), checkpoints and logging.

Generators are called as ``G(x)``; one that takes a style code has an attribute ``nz`` (the code's size) and
accepts ``G(x, z=None, truncation=1.0)``, with ``None`` meaning its mean style, so evaluation, tiled inference
and export work unchanged; validation, inference and export give it codes where asked (``models.bicycle``). A
generator from noise (``models.gan``) is a translation whose source key is the latent ``z``: the model adds
fixed latents to sample and validation batches (``with_fixed_inputs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from translate.core.errors import ConfigError
from translate.models.augment import Augment
from translate.models.losses import GANObjective, Logits, gradient_penalty

Phase = Literal["D", "G"]
#: Batch key of the fixed style codes [K, nz] that ``with_fixed_inputs`` adds for a generator with a style code:
#: sample grids show one column per code, validation measures the outputs' diversity over them.
STYLES = "styles"


@dataclass(frozen=True)
class Translation:
    """One direction a model translates: ``generators()[generator]`` maps ``batch[source]`` to the domain of
    ``batch[target]``."""

    generator: str
    source: str
    target: str


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    """Freeze or unfreeze networks; freezing D during the G step saves computing D's weight gradients."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def plain(net: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return getattr(net, "module", net)


def fixed_latents(n: int, dim: int, seed: int) -> torch.Tensor:
    """``n`` standard normal latents (noise or style codes) from their own generator, never the training RNG."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(int(seed)))


def takes_style(G: nn.Module) -> bool:
    """Whether generator ``G`` takes a style code (``G(x, z)``; the code's size is ``G.nz``)."""
    return bool(getattr(G, "nz", 0))


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """A batch as 3 channels so mixed rows fit one grid: gray repeated; extra channels (an inpainting input's
    mask) left out."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]


class TranslationModel(nn.Module):
    """Base of every model family; see the module docstring for the contract.

    Subclasses set ``paired`` (class attribute) and, in ``__init__``, ``self.translations`` (the first entry is
    the model's primary direction: its validation metrics carry no direction prefix) and ``self.gan_loss``.
    """

    paired: ClassVar[bool]
    #: True for models that generate from noise (``models.gan``): they train on one folder of images.
    from_noise: ClassVar[bool] = False
    #: The order of a step's phases, each one's update made before the next is computed. ``("D", "G")``: G is
    #: scored by the just-updated D (pix2pix, CUT). ``("G", "D")``: G is scored by D as it was, then D is updated
    #: on the fakes made before G's update (CycleGAN, BicycleGAN). Each family takes its reference's order.
    phases: ClassVar[tuple[Phase, Phase]] = ("D", "G")
    #: How many times smaller than the data's the smallest images are that a step gives the discriminators (2 in
    #: pix2pixHD's global phase); the pre-training size check multiplies D's minimum size by it.
    coarsest_scale: int = 1
    #: Whether some trained parameters sit out some steps (pix2pixHD's phases): DDP must then look for them.
    unused_parameters: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if sorted(cls.phases) != ["D", "G"]:
            raise TypeError(f"{cls.__name__}.phases={cls.phases!r}: name each phase, 'D' and 'G', once")

    def __init__(self, gan_loss: GANObjective):
        super().__init__()
        self.gan_loss = gan_loss
        self.translations: dict[str, Translation] = {}
        # What discriminators see goes through this (the loop sets ``augment=diffaugment|ada``; none by default).
        self.augment: Augment = Augment()

    def set_augment(self, augment: Augment) -> None:
        """What the discriminators see from now on. ADA's heuristic counts D's outputs on either side of the
        objective's decision, which a WGAN critic (whose outputs' offset is arbitrary) does not have."""
        if augment.probability is not None and self.gan_loss.decision is None:
            raise ConfigError(f"augment=ada: {self.gan_loss!r} has no decision between real and fake for ADA's "
                              "heuristic (a critic's outputs have no fixed offset); use augment=diffaugment")
        self.augment = augment

    def judge(self, D: nn.Module, x: torch.Tensor, colour_from: int = 0, **kwargs) -> Logits:
        """D's logits for ``x`` as the discriminators learn to judge it: augmented (``models.augment``; a pair's
        colour transform on its channels ``colour_from:``, the output's)."""
        return D(self.augment(x, colour_from), **kwargs)

    # ------------------------------------------------------------------ networks
    def generators(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def discriminators(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def auxiliaries(self) -> dict[str, nn.Module]:
        """Trained networks that are neither generators nor discriminators (none by default)."""
        return {}

    def style_encoder(self) -> nn.Module | None:
        """The network that reads a style code off a target image, ``E(image) -> (mean, log-variance)``, for
        reference styles at inference (one of the auxiliaries; none by default)."""
        return None

    def networks(self) -> dict[str, nn.Module]:
        """Every trained network by name: generators, discriminators, auxiliaries."""
        return {**self.generators(), **self.discriminators(), **self.auxiliaries()}

    def replace_network(self, name: str, module: nn.Module) -> None:
        """Put ``module`` (a DDP wrapper, a SyncBatchNorm copy) where network ``name`` is, so the steps call it."""
        if name not in self.networks():
            raise KeyError(f"{type(self).__name__} has no network {name!r}")
        setattr(self, name, module)

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        """One optimizer per group, as the reference: the generators (and auxiliaries) together, the
        discriminators together."""
        return {"G": [*self.generators().values(), *self.auxiliaries().values()],
                "D": list(self.discriminators().values())}

    def phase_of(self, group: str) -> Phase:
        """Which loss steps optimizer ``group``: ``D`` (``loss/D``, after ``d_step``) or ``G`` (``loss/G``)."""
        return "D" if group == "D" else "G"

    # ------------------------------------------------------------------ steps
    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The fakes of one step, shared by ``d_step`` and ``g_step``."""
        raise NotImplementedError

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor, name: str = "D", *,
                           fake_first: bool = False, average: bool = True, colour_from: int = 0) -> dict[str, torch.Tensor]:
        """``loss/{name}/real``, ``/fake`` (and ``/gp`` with a gradient penalty) and their total ``loss/{name}``:
        half the sum of the real and fake terms (``average``, as pix2pix, CycleGAN and CUT; else their sum, as
        BicycleGAN), plus the weighted penalty. ``fake_first``: D sees the fakes before the reals, as the
        references of pix2pix, CUT and BicycleGAN do (it changes batch-norm running statistics only). ``fake``
        must be detached from G. D judges through ``judge`` (augmented, and heard by an adaptive augmentation);
        ``colour_from`` as there."""
        def judged(x: torch.Tensor) -> Logits:
            return self.judge(D, x, colour_from)

        if fake_first:
            fake_logits = judged(fake)
            real_logits = judged(real)
        else:
            real_logits = judged(real)
            fake_logits = judged(fake)
        terms = self.gan_loss.d_loss(real_logits, fake_logits)
        verdicts = self.verdicts(name, real_logits, fake_logits)
        if f"D_out/{name}/real_sign" in verdicts:  # not for a critic (set_augment refuses ADA there)
            self.augment.observe(verdicts[f"D_out/{name}/real_sign"], len(real))
        losses = {f"loss/{name}/real": terms["real"], f"loss/{name}/fake": terms["fake"], **verdicts}
        total = (0.5 if average else 1.0) * (terms["real"] + terms["fake"])
        if self.gan_loss.gp_weight:
            losses[f"loss/{name}/gp"] = gradient_penalty(judged, real, fake)
            total = total + self.gan_loss.gp_weight * losses[f"loss/{name}/gp"]
        losses[f"loss/{name}"] = total
        return losses

    @torch.no_grad()
    def verdicts(self, name: str, real: Logits, fake: Logits) -> dict[str, torch.Tensor]:
        """How sure D is, logged with its losses: ``D_out/{name}/real_sign``, the share of real outputs above the
        objective's decision minus the share below (ADA's overfitting heuristic r_t; it nears 1 as D memorises
        its reals), and the mean outputs on reals and fakes."""
        flat = {k: torch.cat([o.detach().float().flatten() for o in ([v] if isinstance(v, torch.Tensor) else v)])
                for k, v in (("real", real), ("fake", fake))}
        stats = {f"D_out/{name}/{k}": v.mean() for k, v in flat.items()}
        if self.gan_loss.decision is not None:
            stats[f"D_out/{name}/real_sign"] = torch.sign(flat["real"] - self.gan_loss.decision).mean()
        return stats

    # ------------------------------------------------------------------ state and samples
    def with_fixed_inputs(self, batch: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
        """``batch`` (a sample grid's or a validation batch) with what the model otherwise draws at random each
        step (a latent, a style code) drawn once from ``seed``, so grids and metrics see the same inputs at
        every step; the batch as it is by default."""
        return batch

    def calibrate(self, batches, generators: dict[str, nn.Module], device: torch.device) -> None:
        """After each validation: statistics of the val batches (under ``generators``, the sample ones, in eval
        mode) the model keeps in ``extra_state``, e.g. the autoencoder's reconstruction errors that set the
        out-of-domain guard's threshold. Nothing by default."""

    def extra_state(self) -> dict:
        """Training state that is not a parameter or buffer (e.g. image pools)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what ``extra_state`` returned."""

    @torch.no_grad()
    def sample_columns(self, batch: dict[str, torch.Tensor],
                       generators: dict[str, nn.Module] | None = None) -> list[torch.Tensor]:
        """Columns of a sample grid, per translation: input | output (| target, for paired models); an input the
        data also gives as a picture (``<source>_view``: a label map in colour) is shown as that."""
        gens = generators or self.generators()
        columns = []
        for t in self.translations.values():
            x = batch[t.source]
            shown = batch.get(f"{t.source}_view", x)  # a label map in its palette's colours, not its one-hot channels
            columns += [to_rgb(shown), to_rgb(gens[t.generator](x))]
            if self.paired:
                columns.append(to_rgb(batch[t.target]))
        return columns

    def sample_labels(self, batch: dict[str, torch.Tensor]) -> list[str]:
        """The names written above ``sample_columns``' columns in the run's sample grids (none: no labels)."""
        labels = []
        for t in self.translations.values():
            labels += [f"input {t.source}", f"{t.generator}({t.source})"]
            if self.paired:
                labels.append(f"target {t.target}")
        return labels


class CountsSteps:
    """Mixin (listed before the model's base) for a model whose losses follow its own step count, ``g_steps``
    (BicycleGAN's decaying diversity term, pix2pixHD's phases): ``g_step`` adds one; the count is saved with the
    training state, so a resumed run continues the schedule where it stopped."""

    g_steps: int = 0

    def extra_state(self) -> dict:
        return {"g_steps": self.g_steps}

    def load_extra_state(self, state: dict) -> None:
        self.g_steps = int(state.get("g_steps", 0))


class StyleColumns:
    """Mixin (listed before the model's base) for a paired model whose generator ``G`` may take a style code
    (BicycleGAN, SPADE's and pix2pixHD's options): ``num_styles`` fixed codes under ``styles`` in grid and
    validation batches (the same codes for every row, so each grid column is one style; validation measures the
    outputs' diversity over them), and grids of input | mean style | one column per fixed style | target."""

    num_styles: int = 0

    def with_fixed_inputs(self, batch: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
        G = plain(self.G)
        if not takes_style(G) or not self.num_styles:
            return batch
        return batch | {STYLES: fixed_latents(self.num_styles, int(G.nz), seed)}

    @torch.no_grad()
    def sample_columns(self, batch: dict[str, torch.Tensor],
                       generators: dict[str, nn.Module] | None = None) -> list[torch.Tensor]:
        columns = super().sample_columns(batch, generators)
        if STYLES not in batch:
            return columns
        G, x = (generators or self.generators())["G"], batch[self.src]
        styled = [to_rgb(G(x, z.to(x).expand(len(x), -1))) for z in batch[STYLES]]
        return [*columns[:2], *styled, *columns[2:]]

    def sample_labels(self, batch: dict[str, torch.Tensor]) -> list[str]:
        labels = super().sample_labels(batch)
        if STYLES not in batch:
            return labels
        styles = [f"style {i + 1}" for i in range(len(batch[STYLES]))]
        return [labels[0], "mean style", *styles, *labels[2:]]
