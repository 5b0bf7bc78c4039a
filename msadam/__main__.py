"""``python -m msadam``: the ``msadam`` command line (see :mod:`msadam.cli`)."""

import sys

from msadam.cli import main

if __name__ == "__main__":
    sys.exit(main())
