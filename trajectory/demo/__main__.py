"""``python -m trajectory.demo --out DIR [--month YYYY-MM] [--seed N] [--grids N]``."""

import sys

from trajectory.demo.workspace import main

sys.exit(main())
