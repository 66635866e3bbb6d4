"""One accessor for the typed decisions that cross stages: a profile, a plan or a report arrives
as its pydantic model in process and as a plain dict when read back from JSON."""

from __future__ import annotations

from typing import Any


def get_field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]``; ``default`` when ``obj`` is None or lacks it."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)
