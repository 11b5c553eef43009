"""int8 tries its methods in order, fewest layers in floating point first, and keeps the first whose agreement with
fp32 meets the target (fakes stand in for NNCF and OpenVINO: the real graphs are in tests/e2e/test_infer_openvino.py)."""

from __future__ import annotations

import pytest

from translate.core.errors import ConfigError
from translate.inference import openvino
from translate.inference.openvino import Int8Target


@pytest.fixture
def ladder(monkeypatch):
    """Each method's graph agrees with fp32 at the next of ``psnrs``; returns the methods calibrated, in order."""
    calibrated: list[tuple[str, ...]] = []
    psnrs: list[float] = []
    monkeypatch.setattr(openvino, "compile_for_cpu", lambda model, precision, threads=None: model)
    monkeypatch.setattr(openvino, "calibrated", lambda onnx, cal, check, target, ops, cache: calibrated.append(ops) or ops)
    monkeypatch.setattr(openvino, "outputs_of", lambda compiled, images: [None] * len(images))
    monkeypatch.setattr(openvino, "measure_agreement", lambda model, images, expected: {
        "psnr": psnrs[len(calibrated) - 1], "ssim": 0.995, "max_abs_diff": 0.1, "images": len(images)})
    return calibrated, psnrs


def test_the_first_method_that_keeps_the_picture_is_used(ladder):
    calibrated, psnrs = ladder
    psnrs += [36.0, 48.5]
    model, agreement = openvino.quantized("g.onnx", [1, 2, 3], [4], Int8Target(), cache=None)
    assert model == ("MVN", "Add", "ConvolutionBackpropData") and agreement["psnr"] == 48.5
    assert calibrated == list(Int8Target().float_ops)


def test_a_method_that_meets_the_target_stops_the_search(ladder):
    calibrated, psnrs = ladder
    psnrs += [45.0, 50.0]
    assert openvino.quantized("g.onnx", [1], [2], Int8Target(), cache=None)[0] == ("MVN", "Add")
    assert calibrated == [("MVN", "Add")]  # the faster graph, not calibrated twice


def test_when_no_method_meets_the_target_it_is_refused_with_the_last_agreement(ladder):
    _, psnrs = ladder
    psnrs += [31.0, 38.4]
    with pytest.raises(ConfigError, match=r"^precision=int8: on 1 held-out images .* at 38\.4 dB PSNR, SSIM 0\.9950, "
                                          r"below the target \(40 dB, 0\.99\); use precision=bf16$"):
        openvino.quantized("g.onnx", [1], [2], Int8Target(), cache=None)


def test_ssim_is_part_of_the_target():
    assert Int8Target().met_by({"psnr": 45.0, "ssim": 0.99})
    assert not Int8Target().met_by({"psnr": 45.0, "ssim": 0.9894})
    assert not Int8Target().met_by({"psnr": 39.9, "ssim": 0.999})


def test_a_ladder_without_graphs_is_refused_when_built():
    with pytest.raises(ValueError, match="float_ops: give at least one graph"):
        Int8Target(float_ops=())
    assert Int8Target(float_ops=((),)).float_ops == ((),)  # one graph, every op quantised
