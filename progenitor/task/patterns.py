"""Whether a path falls under a pattern of the task (protected paths, the constitution's file rules)."""

from __future__ import annotations

import fnmatch

__all__ = ["matches"]


def matches(path: str, patterns: list[str]) -> bool:
    """Does ``path`` fall under any protected pattern (a glob, a file, or a directory)?"""
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path == pattern or path.startswith(pattern + "/"):
            return True
    return False
