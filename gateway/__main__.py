"""`python -m gateway`: the same as the `evgw` console script."""

import sys

from gateway.cli import main

sys.exit(main())
