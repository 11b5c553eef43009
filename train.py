"""``python train.py [key=value ...]``: the same as ``translate train`` (train a model family)."""

import sys

from translate.apps.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
