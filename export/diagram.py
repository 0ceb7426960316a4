"""Moved to `nascell.diagram` (each spec kind draws itself: `nascell.kinds`); kept importable."""

from nascell.diagram import *  # noqa: F401,F403
from nascell.diagram import write_diagram  # noqa: F401
