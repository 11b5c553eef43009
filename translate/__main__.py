"""``python -m translate``: the ``translate`` command."""

import sys

from translate.apps.cli import main

sys.exit(main())
