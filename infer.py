"""``python infer.py checkpoint=PATH input=PATH output=DIR [key=value ...]``: the same as ``translate infer``."""

import sys

from translate.apps.cli import main

if __name__ == "__main__":
    sys.exit(main(["infer", *sys.argv[1:]]))
