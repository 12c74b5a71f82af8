"""`python -m ldm_mini`: the ldm-mini command line (``cli.py``)."""

import sys

from .cli import main

sys.exit(main())
