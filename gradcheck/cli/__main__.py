"""``python -m gradcheck.cli``: the same as the ``gradcheck`` command."""

import sys

from . import main

sys.exit(main())
