"""``python -m ldam_sklearn``: the same command line as ``ldam-sklearn``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
