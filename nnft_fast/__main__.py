"""``python -m nnft_fast``: the ``nnft`` command line."""

import sys

from .cli import main

sys.exit(main())
