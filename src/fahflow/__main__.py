"""`python -m fahflow` runs the console script."""

import sys

from fahflow.cli import main

sys.exit(main())
