"""``python -m skacd.evaluation``: the same as ``skacd evaluate``."""

import sys

from ._command_line import main

sys.exit(main())
