"""Training on label maps (issue 31): the semantic demo through the loop, its maps shown in colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_overrides
from omegaconf import open_dict
from PIL import Image

from translate.config.compose import compose
from translate.training.loop import fit


def test_pix2pix_trains_on_label_maps_and_shows_them_in_colour(tmp_path):
    cfg = compose(tiny_overrides("data=demo_labels", f"data.root={tmp_path / 'demo'}", "data.num_train=4",
                                 "data.num_val=2", "data.size=32", "generator.num_downs=5", "trainer.max_steps=2",
                                 "trainer.val_every=2", "trainer.sample_every=2"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    assert fit(cfg)["step"] == 2 and cfg.data.input_nc == 8
    grid = np.asarray(Image.open(tmp_path / "run" / "samples" / "step_0000002.png").convert("RGB")).astype(int)
    first = grid[22:150, 2:130]  # the input column, under the labels: the map in its palette's colours
    assert (np.abs(first - np.array([135, 190, 235])).sum(-1) < 10).mean() > 0.1  # sky-coloured pixels


def test_infer_converts_label_maps_as_the_model_was_trained_on_them(tmp_path):
    from helpers import label_dataset

    from translate.data.semantic import LabelData
    from translate.inference.convert import run as infer
    from translate.loading.load import load

    root = label_dataset(tmp_path / "data", "folders", size=(64, 64))
    cfg = compose(tiny_overrides("model=spade", "data=labels", f"data.root={root}", "data.label_nc=4",
                                 "data.instances=true", "data.load_size=64", "data.crop_size=64", "generator.ngf=4",
                                 "generator.hidden=8", "discriminator.ndf=8", "discriminator.n_layers=2",
                                 "model.lambda_vgg=0", "trainer.max_steps=2"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    fit(cfg)
    maps = tmp_path / "maps"
    maps.mkdir()
    for name in ("val0", "val1"):
        (maps / f"{name}.png").write_bytes((root / "val" / "label" / f"{name}.png").read_bytes())
    Image.fromarray(np.full((64, 64), 9, np.uint8), "L").save(maps / "bad.png")  # class 9 of 4
    infer_cfg = compose([f"checkpoint={tmp_path / 'run'}", f"input={maps}", f"output={tmp_path / 'out'}",
                         "quiet=true"], config_name="infer")
    summary = infer(infer_cfg)
    assert summary.converted == 2 and summary.failed[0][1].startswith("label 9 is outside data.label_nc=4")
    out = np.asarray(Image.open(tmp_path / "out" / "val0.png"))
    # the same map through the generator directly, encoded as training encodes it (no instance map: the class edges)
    data = LabelData(root=root, label_nc=4, instances=True, preprocess="none")
    encoding = data.val_dataset().encoding
    pipe = load(tmp_path / "run")
    x = encoding.encode(encoding.read(maps / "val0.png"))[None]
    expected = ((pipe.tensors(x)[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    assert out.shape == (64, 64, 3) and np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    # with its instance maps (instances=DIR, named like the maps), as training encoded it; a map without one fails
    instances = tmp_path / "instances"
    instances.mkdir()
    (instances / "val0.png").write_bytes((root / "val" / "instance" / "val0.png").read_bytes())
    summary = infer(compose([f"checkpoint={tmp_path / 'run'}", f"input={maps}", f"output={tmp_path / 'inst'}",
                             f"instances={instances}", "quiet=true"], config_name="infer"))
    assert summary.converted == 1 and {name for name, _ in summary.failed} == {str(maps / "val1.png"), str(maps / "bad.png")}
    assert any("no instance map named like it" in why for _, why in summary.failed)
    from translate.data.labels import read_instance_map

    with_instances = encoding.encode(encoding.read(maps / "val0.png"), read_instance_map(instances / "val0.png"))[None]
    expected = ((pipe.tensors(with_instances)[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    out = np.asarray(Image.open(tmp_path / "inst" / "val0.png"))
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    # a model folder of it converts as the run does (spectral norm and SPADE blocks rebuilt from the folder)
    import translate
    from translate.inference.export import run as export

    folder = export(compose([f"checkpoint={tmp_path / 'run'}", "format=folder", f"output={tmp_path / 'model'}"],
                            config_name="export"))
    assert torch.equal(translate.load(folder).tensors(x), pipe.tensors(x))


def test_spade_with_its_style_encoder_gives_many_photos_per_map_and_copies_a_reference(tmp_path):
    from helpers import label_dataset

    from translate.inference.convert import run as infer

    root = label_dataset(tmp_path / "data", "folders", size=(64, 64))
    cfg = compose(tiny_overrides("model=spade", "data=labels", f"data.root={root}", "data.label_nc=4",
                                 "data.load_size=64", "data.crop_size=64", "generator.ngf=4", "generator.hidden=8",
                                 "discriminator.ndf=8", "discriminator.n_layers=2", "model.lambda_vgg=0",
                                 "model.style_encoder=true", "model.z_dim=8", "model.encoder.ndf=4",
                                 "model.encoder.size=32", "model.num_styles=2", "trainer.max_steps=2",
                                 "trainer.val_every=2", "trainer.sample_every=2"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    metrics = fit(cfg)
    assert metrics["val/diversity"] > 0 and metrics["loss/G/kld"] >= 0  # over the fixed styles
    grid = Image.open(tmp_path / "run" / "samples" / "step_0000002.png")
    assert grid.width > 5 * 64  # map | mean style | 2 styles | photo
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "val0.png").write_bytes((root / "val" / "label" / "val0.png").read_bytes())
    base = ["checkpoint=" + str(tmp_path / "run"), f"input={maps}", "quiet=true"]
    infer(compose([*base, f"output={tmp_path / 'many'}", "style.samples=3"], config_name="infer"))
    outs = [np.asarray(Image.open(tmp_path / "many" / f"val0_s{k}.png")).astype(int) for k in range(3)]
    assert all(o.shape == (64, 64, 3) for o in outs) and np.abs(outs[0] - outs[1]).max() > 0
    photo = root / "val" / "image" / "val0.png"
    infer(compose([*base, f"output={tmp_path / 'ref'}", f"style.reference={photo}"], config_name="infer"))
    assert len(list((tmp_path / "ref").glob("val0*.png"))) == 1


def test_pix2pixhd_trains_coarse_to_fine_with_instance_features_and_converts_and_exports(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import translate
    from translate.inference.convert import run as infer
    from translate.inference.export import run as export

    cfg = compose(tiny_overrides("experiment=demo_labels_pix2pixhd", f"data.root={tmp_path / 'demo'}",
                                 "data.num_train=4", "data.num_val=2", "model.global_steps=1",
                                 "model.fix_global_steps=1", "model.lambda_vgg=0", "model.instance_feat=true",
                                 "model.feature_encoder.nef=4", "model.feature_encoder.n_downsample=2",
                                 "model.num_styles=2", "trainer.max_steps=3", "trainer.val_every=3",
                                 "trainer.sample_every=3"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    metrics = fit(cfg)
    assert metrics["step"] == 3 and metrics["val/diversity"] > 0  # styles drawn from the classes' features
    assert Image.open(tmp_path / "run" / "samples" / "step_0000003.png").width > 5 * 64  # map | mean | 2 | photo
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "0.png").write_bytes(next((tmp_path / "demo").rglob("val/label/*.png")).read_bytes())
    (maps / "instance").mkdir()
    (maps / "instance" / "0.png").write_bytes(next((tmp_path / "demo").rglob("val/instance/*.png")).read_bytes())
    base = [f"checkpoint={tmp_path / 'run'}", f"input={maps}", f"instances={maps / 'instance'}", "quiet=true"]
    summary = infer(compose([*base, f"output={tmp_path / 'out'}"], config_name="infer"))
    assert summary.converted == 1 and Image.open(tmp_path / "out" / "0.png").size == (64, 64)
    infer(compose([*base, f"output={tmp_path / 'many'}", "style.samples=2"], config_name="infer"))
    outs = [np.asarray(Image.open(tmp_path / "many" / f"0_s{k}.png")).astype(int) for k in range(2)]
    assert np.abs(outs[0] - outs[1]).max() > 0
    pipe = translate.load(tmp_path / "run")
    from translate.data.labels import one_hot

    # a map of stripes (not one class alone: instance norm of a constant map normalises rounding noise)
    x = torch.cat([one_hot((torch.arange(64) * 7 // 64).expand(1, 64, 64), 7), torch.zeros(1, 1, 64, 64)], 1)
    folder = export(compose([f"checkpoint={tmp_path / 'run'}", "format=folder", f"output={tmp_path / 'model'}"],
                            config_name="export"))
    assert torch.equal(translate.load(folder).tensors(x), pipe.tensors(x))
    onnx = export(compose([f"checkpoint={tmp_path / 'run'}", "format=onnx", "style=mean",
                           f"output={tmp_path / 'g.onnx'}"], config_name="export"))
    session = ort.InferenceSession(str(onnx))
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert abs(out - pipe.tensors(x).numpy()).max() < 1e-4


def test_pix2pix_reads_maps_as_colours_and_evaluate_scores_by_segmentation(tmp_path, monkeypatch):
    from translate.evaluation.evaluate import run as evaluate

    monkeypatch.setenv("TRANSLATE_CACHE", str(tmp_path / "cache"))
    cfg = compose(tiny_overrides("data=demo_labels", f"data.root={tmp_path / 'demo'}", "data.num_train=4",
                                 "data.num_val=2", "data.size=32", "data.encoding=colour", "generator.num_downs=5",
                                 "trainer.max_steps=2", "trainer.val_every=2", "trainer.sample_every=2"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    assert fit(cfg)["step"] == 2 and cfg.data.input_nc == 4  # the map's colours and the instance boundaries
    report = evaluate(compose([f"checkpoint={tmp_path / 'run'}", "metrics.segmenter_steps=3", "metrics.fid=false",
                               "metrics.lpips=null", f"output={tmp_path / 'eval'}"], config_name="evaluate"))
    assert report["num_images"] == 2 and {"l1", "ssim", "miou", "pixel_acc", "real_miou", "real_pixel_acc"} <= set(report)
    assert 0 <= report["miou"] <= 1 and 0 <= report["real_pixel_acc"] <= 1
    grid = np.asarray(Image.open(tmp_path / "eval" / "grid.png").convert("RGB")).astype(int)
    assert (np.abs(grid - np.array([135, 190, 235])).sum(-1) < 10).mean() > 0.02  # the maps in their colours
    from translate.inference.convert import run as infer
    from translate.loading.load import load

    maps = tmp_path / "maps"
    maps.mkdir()
    source = next((tmp_path / "demo").rglob("val/label/*.png"))
    (maps / "0.png").write_bytes(source.read_bytes())
    infer(compose([f"checkpoint={tmp_path / 'run'}", f"input={maps}", f"output={tmp_path / 'out'}", "quiet=true"],
                  config_name="infer"))
    encoding = load(tmp_path / "run").config.data
    from translate.data.semantic import label_encoding

    reading = label_encoding(encoding)
    assert reading.colour
    x = reading.encode(reading.read(source))[None]
    expected = ((load(tmp_path / "run").tensors(x)[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte()
    out = np.asarray(Image.open(tmp_path / "out" / "0.png")).astype(int)
    assert np.abs(out - expected.numpy().astype(int)).max() <= 1
