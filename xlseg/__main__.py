"""``python -m xlseg``: the same as the ``xlseg`` command."""

import sys

from xlseg.cli import main

sys.exit(main())
