"""`python -m hfport ...`: the `hfport` command, for an interpreter whose scripts folder is not on
PATH (a venv not activated, a notebook's `!python -m hfport inspect ...`)."""

import sys

from hfport.cli import main

sys.exit(main())
