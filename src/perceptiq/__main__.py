"""``python -m perceptiq`` runs the command line.

``python -m`` puts the working directory first on ``sys.path``; it is taken off before anything else is
imported, so a file in the working directory that shares a module's name is never run.
"""

import os
import sys

_first = sys.path[0] if sys.path else None
if (  # under -P / PYTHONSAFEPATH nothing was prepended
    _first is not None
    and not sys.flags.safe_path
    and (_first in ("", ".") or os.path.abspath(_first) == os.path.abspath(os.getcwd()))
):
    del sys.path[0]

from perceptiq.cli import main  # noqa: E402 - after the working directory is off sys.path

raise SystemExit(main())
