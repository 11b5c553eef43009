import sys

from translate.apps.bench.cli import main

sys.exit(main(sys.argv[1:]))
