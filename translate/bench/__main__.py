import sys

from translate.bench.cli import main

sys.exit(main(sys.argv[1:]))
