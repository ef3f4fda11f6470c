"""`python -m vadbench` runs the command line."""

import sys

from vadbench.cli import main

sys.exit(main())
