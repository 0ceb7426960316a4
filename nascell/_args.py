"""Argument errors in one style, Keras': "Argument `units` must be a positive integer.
Received: units=0".

Library code names Python arguments; a binary that set the argument from a flag passes the
message through `as_flags`, which names the flag instead ("Argument `--units` must be ...").
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional

import numpy as np


def argument_error(name: str, must: str, value: Any, hint: str = "") -> ValueError:
    """``ValueError("Argument `name` must <must>. Received: name=<value>[. <hint>]")``."""
    text = f"Argument `{name}` must {must}. Received: {name}={value!r}"
    return ValueError(f"{text}. {hint}" if hint else text)


def positive_int(name: str, value: Any, required: bool = True,
                 hint: str = "") -> Optional[int]:
    """``value`` as an int >= 1; None when it is None and not ``required``."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise argument_error(name, "be a positive integer", value, hint)
    return int(value)


def as_flags(message: str, names: Optional[Iterable[str]] = None) -> str:
    """A library message with its arguments named as flags: ``Argument `units``` becomes
    ``Argument `--units``` and ``Received: units=0`` becomes ``Received: --units=0`` (only for
    ``names``, when given); a flag that was not given reads ``Received: no --units``."""
    allowed = None if names is None else set(names)

    def flag(match: "re.Match[str]") -> str:
        name = match.group(2)
        if allowed is not None and name not in allowed:
            return match.group(0)
        return f"{match.group(1)}--{name}{match.group(3)}"

    message = re.sub(r"(Argument `)([A-Za-z_][A-Za-z0-9_]*)(`)", flag, message)
    message = re.sub(r"(Received: )([A-Za-z_][A-Za-z0-9_]*)(=)", flag, message)
    return re.sub(r"Received: (--[A-Za-z0-9_]+)=None\b", r"Received: no \1", message)
