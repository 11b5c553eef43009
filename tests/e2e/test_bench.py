"""Benchmark plumbing on tiny configs: a few steps, valid JSON with the promised fields."""

from __future__ import annotations

import json

import pytest
from helpers import write_image

from translate.apps.bench.cli import main


@pytest.mark.slow
def test_train_bench_writes_json(tmp_path, capsys):
    out = tmp_path / "train.json"
    code = main(["train", "generator=unet_64", "generator.ngf=4", "discriminator.ndf=4", "data.load_size=64",
                 "data.crop_size=64", "bench.steps=2", "bench.warmup=1", "bench.modes=[core,fp32,bf16,best]",
                 "bench.data=pipeline", f"bench.output={out}"])
    assert code == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    assert set(rows) == {"core", "fp32", "bf16", "best"}
    for row in rows.values():
        assert row["ms_per_step"]["min"] <= row["ms_per_step"]["median"] <= row["ms_per_step"]["max"]
        assert row["gflop_per_step"] > 0 and row["images_per_s"] > 0 and row["peak_memory_mib"] > 0
        assert row["data_ms_median"] >= 0 and row["speedup_over"] == "core"
    assert rows["core"]["speedup"] == 1.0 and rows["bf16"]["precision"] == "bf16"
    assert rows["best"]["combination"]
    assert "ms/step" in capsys.readouterr().out


@pytest.mark.slow
def test_infer_bench_writes_json(tmp_path):
    out = tmp_path / "infer.json"
    code = main(["infer", "generator=resnet_6blocks", "ngf=4", "num_images=3", "size=32", "batch_size=[1,2]",
                 f"output={out}"])
    assert code == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["mode"] for r in rows] == ["naive", "pipeline", "pipeline"]
    assert rows[0]["speedup_vs_naive"] == 1.0 and all(r["images_per_s"] > 0 for r in rows)
    assert rows[1]["agreement"]["psnr"] == 100.0 and rows[1]["agreement"]["images"] == 3  # torch fp32 itself


@pytest.mark.slow
def test_infer_bench_compares_backends_on_a_trained_checkpoint(p2p_run, tmp_path, capsys):
    pytest.importorskip("openvino")
    images = tmp_path / "mine"
    for i in range(6):
        write_image(images / f"{i}.png", (64, 64), seed=i)
    out = tmp_path / "infer.json"
    code = main(["infer", f"checkpoint={p2p_run}", f"input={images}", "num_images=6", "batch_size=1", "naive=false",
                 "backend=[torch,openvino]", "precision=[fp32,bf16,int8]", "agreement_images=2", f"output={out}"])
    assert code == 0
    rows = json.loads(out.read_text())["results"]
    assert [(r["backend"], r["precision"]) for r in rows] == [
        ("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8")]
    agreement = {(r["backend"], r["precision"]): r["agreement"] for r in rows}
    assert agreement["openvino", "fp32"]["psnr"] > 70 and agreement["openvino", "fp32"]["max_abs_diff"] < 1e-3
    assert 20 < agreement["openvino", "int8"]["psnr"] < 100 and agreement["torch", "bf16"]["psnr"] < 100
    assert "openvino" in capsys.readouterr().out


def test_bench_cli_rejects_unknown_settings(capsys):
    assert main(["train", "bench.stepz=3"]) == 2
    assert "unknown setting(s) bench.stepz" in capsys.readouterr().err
    assert main(["infer", "sizee=3"]) == 2
    assert main([]) == 2


def test_train_bench_keeps_a_named_experiment(tmp_path):
    from translate.apps.bench.train import compose_bench
    from translate.config.compose import compose

    cfg = compose(compose_bench(["experiment=sketch2photo", "generator.ngf=8"], tmp_path))
    assert cfg.data.batch_size == 4 and cfg.generator.ngf == 8 and cfg.data.root == str(tmp_path)
    assert compose(compose_bench(["generator.ngf=8"], tmp_path)).data.batch_size == 1  # reference defaults


def test_train_bench_keeps_an_experiment_s_demo_data(tmp_path):
    """A demo experiment is timed on its own data and sizes (64x64, its small networks), not on synthetic
    256x256 folders; an unpaired model without an experiment gets unpaired synthetic folders."""
    from translate.apps.bench.train import compose_bench
    from translate.config.compose import compose

    cfg = compose(compose_bench(["experiment=demo_day2night_cut"], tmp_path))
    assert cfg.data._target_ == "translate.data.demo.day2night" and cfg.data.crop_size == 64
    assert cfg.generator.ngf == 32 and cfg.model._target_ == "translate.models.CUT"
    assert cfg.data.root == str(tmp_path / "demo") and cfg.data.num_train == 8
    plain = compose(compose_bench(["model=cut"], tmp_path / "plain"))
    assert plain.data._target_ == "translate.data.UnalignedData" and (tmp_path / "plain" / "trainA").is_dir()


def test_train_bench_times_noise_models_on_their_data(tmp_path):
    """The face demo experiments keep their demo; model=gan without one gets a synthetic folder of images."""
    from translate.apps.bench.train import compose_bench
    from translate.config.compose import compose

    cfg = compose(compose_bench(["experiment=demo_faces_stylegan"], tmp_path))
    assert cfg.data._target_ == "translate.data.faces.faces" and cfg.data.num_train == 64
    assert cfg.generator._target_ == "translate.networks.StyleGenerator"
    plain = compose(compose_bench(["model=gan", "data.crop_size=64", "data.load_size=64"], tmp_path / "plain"))
    assert plain.data._target_ == "translate.data.SingleData" and len(list((tmp_path / "plain" / "train").iterdir())) == 8


@pytest.mark.slow
def test_serve_bench_reports_latency_and_memory():
    from translate.apps.bench.serve import bench_serve

    report = bench_serve(generator="resnet_6blocks", ngf=4, size=32, requests=3, concurrency=2, device="cpu")
    r = report["results"]
    assert 0 < r["one_at_a_time"]["p50_ms"] <= r["one_at_a_time"]["p95_ms"]
    assert 0 < r["burst"]["p50_ms"] <= r["burst"]["p95_ms"] and r["burst_images_per_s"] > 0
    assert r["peak_memory_mib"] > 50


def test_background_load_runs_busy_processes_only_during_the_block():
    import multiprocessing as mp

    from translate.apps.bench.load import background_load

    with background_load(2):
        busy = [p for p in mp.active_children() if p.name.startswith("busy-")]
        assert len(busy) == 2 and all(p.is_alive() for p in busy)
    assert not any(p.is_alive() for p in busy)
    with background_load(0):
        assert not [p for p in mp.active_children() if p.name.startswith("busy-")]
    with pytest.raises(ValueError, match="load=-1"):
        with background_load(-1):
            pass
