"""Deprecated (0.1.0's module; removed in nascell 0.3.0): moved to `nascell.diagram`, which
writes each spec kind's picture (`nascell.kinds`, `nascell.pictures`)."""

import warnings

from nascell.diagram import *  # noqa: F401,F403
from nascell.diagram import write_diagram  # noqa: F401

warnings.warn("nascell.export.diagram is deprecated and will be removed in nascell 0.3.0; "
              "use nascell.diagram", DeprecationWarning, stacklevel=2)
