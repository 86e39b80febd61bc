"""``python -m nnft_fast``: the ``nnft`` command line."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
