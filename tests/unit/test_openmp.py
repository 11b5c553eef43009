"""How long torch's OpenMP threads spin before sleeping: short by default, as the user says, never once torch is
loaded (translate.core.openmp)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from translate.core.openmp import SHORT_SPIN, wait_settings

NOTHING: dict = {}


@pytest.mark.parametrize(("env", "settings"), [
    ({}, {"GOMP_SPINCOUNT": SHORT_SPIN}),
    ({"TRANSLATE_OMP_WAIT": "passive"}, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ({"TRANSLATE_OMP_WAIT": " Active"}, {}),
    ({"OMP_WAIT_POLICY": "ACTIVE", "TRANSLATE_OMP_WAIT": "passive"}, {}),  # the user's own setting wins
    ({"GOMP_SPINCOUNT": "1000"}, {}),
])
def test_the_wait_settings(env, settings):
    assert wait_settings(env, NOTHING) == settings


def test_nothing_changes_once_torch_is_loaded():
    assert wait_settings({}, {"torch": object()}) == {}


def test_a_wrong_choice_says_so_and_keeps_the_short_spin(capsys):
    assert wait_settings({"TRANSLATE_OMP_WAIT": "sometimes"}, NOTHING) == {"GOMP_SPINCOUNT": SHORT_SPIN}
    assert "TRANSLATE_OMP_WAIT='sometimes' is not one of short, active, passive" in capsys.readouterr().err


def test_import_translate_sets_it_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "TRANSLATE_OMP_WAIT")}
    code = "import os, translate; print(os.environ.get('GOMP_SPINCOUNT'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == SHORT_SPIN, out.stderr[-500:]
