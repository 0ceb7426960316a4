"""Executors by name (the ``--executor`` flag): ``local`` (default) and ``ray``.

Entries are imported lazily, so Ray is only imported when the ``ray`` executor is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List

from nascell.search.executors.base import Executor, evaluate_trial
from nascell.search.executors.local import LocalExecutor
from nascell.search.executors.ray_executor import RayExecutor  # imports ray only when created

_EXECUTORS: Dict[str, str] = {
    "local": "nascell.search.executors.local:LocalExecutor",
    "ray": "nascell.search.executors.ray_executor:RayExecutor",
}


def register_executor(name: str, target: str) -> None:
    """Register `target` ("package.module:Class") under `name`."""
    _EXECUTORS[name] = target


def available_executors() -> List[str]:
    return sorted(_EXECUTORS)


def create_executor(name: str, **options: Any) -> Executor:
    """An executor by registry name with its keyword options."""
    if name not in _EXECUTORS:
        raise ValueError(f"Argument `name` must be a registered executor, one of "
                         f"{available_executors()}. Received: name={name!r}")
    module, cls = _EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


__all__ = ["Executor", "LocalExecutor", "RayExecutor", "available_executors",
           "create_executor", "evaluate_trial", "register_executor"]
