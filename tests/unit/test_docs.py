"""The documentation site builds with ``--strict`` (no broken link, page or API reference), and the README stays a
front door: the two set-up commands first, at most about 200 lines, links into the site that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "configuration" / "index.html").read_text()
    assert "model=cyclegan" in reference and "max_steps" in reference  # generated from conf/ at build time


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert len(first_block) == 2 and "python train.py" in first_block[0] and "pytest" in first_block[1]
    assert len(text.splitlines()) <= 200
    for link in re.findall(r"\]\(((?:docs|conf)/[^)#]*)", text):
        assert (ROOT / link).exists(), link
