"""What ``import translate; translate.load(X)`` costs: modules imported and seconds, in fresh processes.

    python examples/load_cost.py MODEL_FOLDER RUN_FOLDER [...]

Prints, per argument, the module count, the median and range of 5 fresh processes' wall time, and whether Hydra
was imported."""

from __future__ import annotations

import statistics
import subprocess
import sys

PROBE = """
import sys, time
start = time.perf_counter()
import translate
translate.load(sys.argv[1])
print(len(sys.modules), time.perf_counter() - start, 'hydra' in sys.modules)
"""


def measure(target: str, repeats: int = 5) -> str:
    outputs = [subprocess.run([sys.executable, "-c", PROBE, target], capture_output=True, text=True,
                              check=True).stdout.split() for _ in range(repeats)]
    seconds = sorted(float(out[1]) for out in outputs)
    return (f"{target}: {outputs[0][0]} modules, {statistics.median(seconds):.2f} s "
            f"({seconds[0]:.2f}-{seconds[-1]:.2f}), hydra imported: {outputs[0][2]}")


if __name__ == "__main__":
    for target in sys.argv[1:]:
        print(measure(target))
