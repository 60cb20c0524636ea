"""``python -m skacd.evaluation``: the same as ``skacd evaluate``."""

import sys

from ..cli._evaluate import main

sys.exit(main())
