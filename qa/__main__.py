"""`python -m qa ...`: the same command as `qa ...`."""

import sys

from qa.cli import main

sys.exit(main())
