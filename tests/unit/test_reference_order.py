"""Every family trains in its reference's order. One step of a tiny model through the real loop
(``Trainer.train_step``) gives the same losses, gradients, updated weights and batch-norm statistics as a plain
re-implementation of its reference's ``optimize_parameters``, written here from the official code:

- pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix, ``pix2pix_model.py``): forward; D on the fake pair, then the
  real pair, step D; then G against the updated D, step G.
- CycleGAN (the same repository, ``cycle_gan_model.py``): forward (G_A(A), G_B(G_A(A)), G_B(B), G_A(G_B(B)));
  G first, scored by the discriminators as they were, step G; then D_A and D_B (real, then fake) on the fakes
  made before G's update, step D.
- CUT and FastCUT (taesungp/contrastive-unpaired-translation, ``cut_model.py``): forward; D on the fake, then
  the real, step D; then G and F (GAN, then PatchNCE: G's features of the output, then of the input), step both.
- BicycleGAN (junyanz/BicycleGAN, ``bicycle_gan_model.py``): forward (E(B), z, G(A, z) twice, E(G(A, z)));
  ``update_G_and_E`` (the latent regression with E frozen), then ``update_D`` on the fakes made before:
  D and D2 each on the fake, then the real, their sum (not its half).

Same initial weights and batch, no dropout, no image pool, constant learning rate, batch norm everywhere (so the
order of network calls shows in the running statistics). Adam's first step moves a weight by about lr * sign(g),
rounding-dominated where |g| is near its eps, so weights are compared where |g| is well above it.

``python tests/unit/test_reference_order.py`` prints each family's step-1 relative differences from its reference.
"""

from __future__ import annotations

import copy
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import fit_killed_at_step, tiny_overrides, write_image
from omegaconf import DictConfig, open_dict
from torch import nn

from translate.config.checkpoint import load_checkpoint
from translate.config.compose import compose, resume_config
from translate.models import CUT, BicycleGAN, CycleGAN, Pix2Pix
from translate.models.base import TranslationModel
from translate.training.loop import Trainer, fit, prepare_config

COMMON = ["scheduler=constant", "trainer.max_steps=1", "trainer.val_every=0", "trainer.num_samples=0",
          "trainer.check_data=off", "data.batch_size=2", "generator.norm=batch", "discriminator.norm=batch"]
FAMILIES = {
    "pix2pix": ["model=pix2pix", "data=aligned", "generator=unet_64", "generator.num_downs=5",
                "generator.dropout=false"],
    "cyclegan": ["model=cyclegan", "data=unaligned", "generator=resnet_6blocks", "generator.n_blocks=2",
                 "model.pool_size=0"],
    "cut": ["model=cut", "data=unaligned", "generator=resnet_6blocks", "model.num_patches=16",
            "model.head_width=16"],
    "fastcut": ["model=fastcut", "data=unaligned", "generator=resnet_6blocks", "model.num_patches=16",
                "model.head_width=16"],  # model.seed=0: the first step flips its inputs
    "bicycle": ["model=bicycle", "data=aligned", "generator=bicycle_unet", "generator.num_downs=5",
                "model.encoder.nef=8", "model.encoder.n_blocks=3", "model.encoder.norm=batch",
                "discriminator.num_D=2", "discriminator.n_layers=2"],
}
ADAM_EPS = 1e-8


# ----------------------------------------------------------------------------------------------- the references
def gan_mode(cfg: DictConfig) -> str:
    """The reference's ``--gan_mode`` of the run's objective (the tests use these two)."""
    return {"LSGAN": "lsgan", "VanillaGAN": "vanilla"}[cfg.gan_loss._target_.rsplit(".", 1)[1]]


def gan_loss(mode: str, logits, real: bool) -> torch.Tensor:
    """The reference GANLoss (``lsgan`` or ``vanilla``) against an all-real or all-fake target; a list of
    scales is summed (BicycleGAN's)."""
    if isinstance(logits, (list, tuple)):
        return sum(gan_loss(mode, x, real) for x in logits)
    target = torch.full_like(logits, float(real))
    return F.mse_loss(logits, target) if mode == "lsgan" else F.binary_cross_entropy_with_logits(logits, target)


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def adam(cfg: DictConfig, *nets: nn.Module) -> torch.optim.Adam:
    return torch.optim.Adam([p for net in nets for p in net.parameters()], lr=cfg.optim.G.lr,
                            betas=tuple(cfg.optim.G.betas))


def pix2pix_reference(model, batch, cfg) -> dict[str, torch.Tensor]:
    G, D, mode, lam = model.G, model.D, gan_mode(cfg), cfg.model.lambda_l1
    opt_G, opt_D = adam(cfg, G), adam(cfg, D)
    real_A, real_B = batch["A"], batch["B"]
    fake_B = G(real_A)
    set_requires_grad([D], True)
    opt_D.zero_grad()
    d_fake = gan_loss(mode, D(torch.cat((real_A, fake_B), 1).detach()), False)
    d_real = gan_loss(mode, D(torch.cat((real_A, real_B), 1)), True)
    loss_D = (d_fake + d_real) * 0.5
    loss_D.backward()
    opt_D.step()
    set_requires_grad([D], False)
    opt_G.zero_grad()
    g_gan = gan_loss(mode, D(torch.cat((real_A, fake_B), 1)), True)
    l1 = F.l1_loss(fake_B, real_B)
    loss_G = g_gan + l1 * lam
    loss_G.backward()
    opt_G.step()
    return {"loss/D/fake": d_fake, "loss/D/real": d_real, "loss/D": loss_D, "loss/G/gan": g_gan, "loss/G/l1": l1,
            "loss/G": loss_G}


def cyclegan_reference(model, batch, cfg) -> dict[str, torch.Tensor]:
    G_A, G_B, D_A, D_B, m = model.G_A, model.G_B, model.D_A, model.D_B, cfg.model
    mode, lam_A, lam_B, lam_idt = gan_mode(cfg), m.lambda_A, m.lambda_B, m.lambda_identity
    opt_G, opt_D = adam(cfg, G_A, G_B), adam(cfg, D_A, D_B)
    real_A, real_B = batch["A"], batch["B"]
    fake_B = G_A(real_A)
    rec_A = G_B(fake_B)
    fake_A = G_B(real_B)
    rec_B = G_A(fake_A)
    # G_A and G_B, against the discriminators as they are
    set_requires_grad([D_A, D_B], False)
    opt_G.zero_grad()
    idt_A = F.l1_loss(G_A(real_B), real_B)
    idt_B = F.l1_loss(G_B(real_A), real_A)
    gan_A = gan_loss(mode, D_A(fake_B), True)
    gan_B = gan_loss(mode, D_B(fake_A), True)
    cycle_A, cycle_B = F.l1_loss(rec_A, real_A), F.l1_loss(rec_B, real_B)
    loss_G = gan_A + gan_B + cycle_A * lam_A + cycle_B * lam_B + idt_A * lam_B * lam_idt + idt_B * lam_A * lam_idt
    loss_G.backward()
    opt_G.step()
    # D_A and D_B, on the fakes made before G's update
    set_requires_grad([D_A, D_B], True)
    opt_D.zero_grad()
    losses = {"loss/G/gan_A": gan_A, "loss/G/gan_B": gan_B, "loss/G/cycle_A": cycle_A, "loss/G/cycle_B": cycle_B,
              "loss/G/idt_A": idt_A, "loss/G/idt_B": idt_B, "loss/G": loss_G}
    for name, D, real, fake in (("D_A", D_A, real_B, fake_B), ("D_B", D_B, real_A, fake_A)):
        d_real, d_fake = gan_loss(mode, D(real), True), gan_loss(mode, D(fake.detach()), False)
        losses |= {f"loss/{name}/real": d_real, f"loss/{name}/fake": d_fake, f"loss/{name}": (d_real + d_fake) * 0.5}
        losses[f"loss/{name}"].backward()
    opt_D.step()
    losses["loss/D"] = losses["loss/D_A"] + losses["loss/D_B"]
    return losses


def patch_nce(q: torch.Tensor, k: torch.Tensor, batch_size: int, T: float) -> torch.Tensor:
    """CUT's PatchNCELoss per patch: the positive is the same location of the input, the negatives the other
    sampled locations of the same image (its own location masked with -10)."""
    n, dim = q.shape
    k = k.detach()
    positive = torch.bmm(q.view(n, 1, -1), k.view(n, -1, 1)).view(n, 1)
    q, k = q.view(batch_size, -1, dim), k.view(batch_size, -1, dim)
    patches = q.shape[1]
    negatives = torch.bmm(q, k.transpose(2, 1))
    negatives.masked_fill_(torch.eye(patches, dtype=torch.bool)[None], -10.0)
    logits = torch.cat((positive, negatives.view(-1, patches)), dim=1) / T
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long), reduction="none")


def cut_reference(model, batch, cfg) -> dict[str, torch.Tensor]:
    G, D, head, m, draws = model.G, model.D, model.F, cfg.model, model.draws
    mode, layers, n = gan_mode(cfg), model.nce_layers, len(batch["A"])
    opt_G, opt_D, opt_F = adam(cfg, G), adam(cfg, D), adam(cfg, head)
    real_A, real_B = batch["A"], batch["B"]
    real = torch.cat((real_A, real_B)) if m.nce_idt else real_A
    flipped = m.flip_equivariance and bool(torch.rand((), generator=draws) < 0.5)
    fake = G(real.flip(3) if flipped else real)
    fake_B, idt_B = fake[:n], fake[n:]

    def nce(src, tgt):
        feat_q = G(tgt, feature_layers=layers)
        if flipped:
            feat_q = [f.flip(3) for f in feat_q]
        feat_k = G(src, feature_layers=layers)
        ids = [torch.randperm(f.shape[2] * f.shape[3], generator=draws)[: m.num_patches] for f in feat_k]
        pairs = zip(head(feat_q, ids), head(feat_k, ids))  # the network, PatchSampleF, is ours
        return sum((patch_nce(q, k, n, m.nce_T) * m.lambda_nce).mean() for q, k in pairs) / len(layers)

    set_requires_grad([D], True)
    opt_D.zero_grad()
    d_fake = gan_loss(mode, D(fake_B.detach()), False)
    d_real = gan_loss(mode, D(real_B), True)
    loss_D = (d_fake + d_real) * 0.5
    loss_D.backward()
    opt_D.step()
    set_requires_grad([D], False)
    opt_G.zero_grad()
    opt_F.zero_grad()
    g_gan = gan_loss(mode, D(fake_B), True) * m.lambda_gan
    nce_A = nce(real_A, fake_B)
    losses = {"loss/D/fake": d_fake, "loss/D/real": d_real, "loss/D": loss_D, "loss/G/gan": g_gan}
    if m.nce_idt:
        nce_B = nce(real_B, idt_B)
        losses |= {"loss/G/nce": nce_A / m.lambda_nce, "loss/G/nce_idt": nce_B / m.lambda_nce}
        losses["loss/G"] = g_gan + (nce_A + nce_B) * 0.5
    else:
        losses |= {"loss/G/nce": nce_A / m.lambda_nce, "loss/G": g_gan + nce_A}
    losses["loss/G"].backward()
    opt_G.step()
    opt_F.step()
    return losses


def bicycle_reference(model, batch, cfg) -> dict[str, torch.Tensor]:
    G, E, D, D2, m = model.G, model.E, model.D, model.D2, cfg.model
    mode, half = gan_mode(cfg), len(batch["A"]) // 2
    opt_G, opt_E, opt_D, opt_D2 = adam(cfg, G), adam(cfg, E), adam(cfg, D), adam(cfg, D2)
    A_enc, B_enc, B_rand = batch["A"][:half], batch["B"][:half], batch["B"][half:]
    mu, logvar = E(B_enc)
    z_encoded = torch.randn(half, m.nz) * logvar.mul(0.5).exp() + mu
    z_random = torch.randn(half, m.nz)
    fake_encoded, fake_random = G(A_enc, z_encoded), G(A_enc, z_random)
    mu2, _ = E(fake_random)
    # update_G_and_E
    set_requires_grad([D, D2], False)
    opt_E.zero_grad()
    opt_G.zero_grad()
    g_gan = gan_loss(mode, D(fake_encoded), True) * m.lambda_gan
    g_gan2 = gan_loss(mode, D2(fake_random), True) * m.lambda_gan2
    kl = torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) * -0.5
    l1 = F.l1_loss(fake_encoded, B_enc)
    loss_G = g_gan + g_gan2 + l1 * m.lambda_l1 + kl * m.lambda_kl
    loss_G.backward(retain_graph=True)
    set_requires_grad([E], False)  # the latent regression trains G alone
    z_l1 = F.l1_loss(mu2, z_random)
    (z_l1 * m.lambda_z).backward()
    set_requires_grad([E], True)
    opt_E.step()
    opt_G.step()
    # update_D, on the fakes made before G's update
    set_requires_grad([D, D2], True)
    losses = {"loss/G/gan": g_gan, "loss/G/gan2": g_gan2, "loss/G/kl": kl, "loss/G/l1": l1, "loss/G/z": z_l1,
              "loss/G": loss_G + z_l1 * m.lambda_z}
    for name, net, opt, real, fake in (("D_encoded", D, opt_D, B_enc, fake_encoded),
                                       ("D_random", D2, opt_D2, B_rand, fake_random)):
        opt.zero_grad()
        d_fake, d_real = gan_loss(mode, net(fake.detach()), False), gan_loss(mode, net(real), True)
        losses |= {f"loss/{name}/fake": d_fake, f"loss/{name}/real": d_real, f"loss/{name}": d_fake + d_real}
        losses[f"loss/{name}"].backward()
        opt.step()
    losses["loss/D"] = losses["loss/D_encoded"] + losses["loss/D_random"]
    return losses


REFERENCES: dict[str, Callable] = {"pix2pix": pix2pix_reference, "cyclegan": cyclegan_reference,
                                   "cut": cut_reference, "fastcut": cut_reference, "bicycle": bicycle_reference}


# ----------------------------------------------------------------------------------------------- one step each way
def make_data(root: Path) -> Path:
    """root/aligned ({train,val}/{A,B}) and root/unaligned ({train,val}{A,B}): 4 train images a side, 40x36."""
    for side in "AB":
        for split, n in (("train", 4), ("val", 2)):
            for i in range(n):
                seed = 10 * (side == "B") + 5 * (split == "val") + i
                write_image(root / "aligned" / split / side / f"{i}.png", seed=seed)
                write_image(root / "unaligned" / f"{split}{side}" / f"{i}.png", seed=100 + seed)
    return root


def snapshot(nets: dict[str, nn.Module], losses: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Losses, gradients and state (weights and batch-norm statistics) by name."""
    grads = {f"{n}.{k}": p.grad.clone() for n, net in nets.items() for k, p in net.named_parameters()
             if p.grad is not None}
    state = {f"{n}.{k}": v.clone() for n, net in nets.items() for k, v in net.state_dict().items()}
    return {"losses": {k: float(v.detach()) for k, v in losses.items()}, "grads": grads, "state": state}


def one_step(family: str, data: Path, run_dir: Path) -> tuple[dict, dict]:
    """One step of ``family`` through the loop and through its reference, from the same weights and batch:
    (ours, reference) as ``snapshot``s."""
    layout = "aligned" if "data=aligned" in FAMILIES[family] else "unaligned"
    cfg = compose(tiny_overrides(*COMMON, *FAMILIES[family], f"data.root={data / layout}"))
    with open_dict(cfg):
        cfg.run_dir = str(run_dir)
    trainer = Trainer(prepare_config(cfg))
    batch = next(trainer.batches())
    reference, rng = copy.deepcopy(trainer.model), torch.get_rng_state()
    ours = snapshot(trainer.nets, trainer.train_step(batch))
    torch.set_rng_state(rng)
    theirs = snapshot(reference.networks(), REFERENCES[family](reference, batch, trainer.cfg))
    return ours, theirs


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def differences(ours: dict, theirs: dict) -> dict[str, float]:
    """Relative differences from the reference: each of its losses, and the gradients of each network."""
    out = {k: abs(ours["losses"][k] - v) / max(abs(v), 1e-30) for k, v in theirs["losses"].items()}
    for net in sorted({k.split(".")[0] for k in theirs["grads"]}):
        keys = [k for k in theirs["grads"] if k.startswith(f"{net}.")]
        mine = torch.cat([ours["grads"][k].flatten() for k in keys])
        out[f"grad/{net}"] = relative(mine, torch.cat([theirs["grads"][k].flatten() for k in keys]))
    return out


# ----------------------------------------------------------------------------------------------- the test
@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_one_step_matches_the_reference(family, data, tmp_path):
    ours, theirs = one_step(family, data, tmp_path / "run")
    assert set(theirs["losses"]) <= set(ours["losses"]) and ours["grads"].keys() == theirs["grads"].keys()
    for name, value in theirs["losses"].items():
        assert math.isclose(ours["losses"][name], value, rel_tol=1e-5, abs_tol=1e-7), name
    for name, g in theirs["grads"].items():
        assert relative(ours["grads"][name], g) < 1e-4, name
    for name, expected in theirs["state"].items():
        got = ours["state"][name]
        if name in theirs["grads"]:  # a weight: where Adam's step is not rounding-dominated
            sure = theirs["grads"][name].abs() > 1e3 * ADAM_EPS
            got, expected = got[sure], expected[sure]
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7, msg=name)


def test_every_family_declares_its_reference_order():
    assert Pix2Pix.phases == CUT.phases == ("D", "G")
    assert CycleGAN.phases == BicycleGAN.phases == ("G", "D")
    with pytest.raises(TypeError, match="name each phase, 'D' and 'G', once"):
        type("OnlyG", (TranslationModel,), {"phases": ("G", "G")})


@pytest.mark.slow
def test_a_checkpoint_of_the_old_order_resumes(data, tmp_path, monkeypatch):
    """The order is not part of a checkpoint: a CycleGAN run saved under the old D-then-G loop continues."""
    cfg = compose(tiny_overrides(*COMMON, *FAMILIES["cyclegan"], f"data.root={data / 'unaligned'}",
                                 "trainer.max_steps=2", "trainer.checkpoint_every=1"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    with monkeypatch.context() as old:
        old.setattr(CycleGAN, "phases", ("D", "G"))
        fit_killed_at_step(cfg, 2)
    assert load_checkpoint(cfg.run_dir)["step"] == 1
    assert fit(resume_config(cfg.run_dir, []))["step"] == 2


if __name__ == "__main__":
    families = sys.argv[1:] or list(FAMILIES)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_data(Path(tmp))
        for family in families:
            figures = differences(*one_step(family, root, Path(tmp) / family))
            print(f"{family}: step-1 relative differences from the reference")
            for name, value in figures.items():
                print(f"  {name:22s} {value:.2e}")
