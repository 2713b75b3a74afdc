"""The one exception type the command-line front doors turn into a single ``error: ...`` line, and the
existence check every file reader starts with."""
from __future__ import annotations

import os
from pathlib import Path


class TexnetsError(Exception):
    """A user-facing problem (bad file, bad name, bad config) whose message is the whole story."""


def existing_file(path: str | os.PathLike, what: str, directory_hint: str = "") -> Path:
    """``path`` as a Path if it is an existing file; otherwise a one-line ``TexnetsError`` naming ``what``."""
    path = Path(path)
    if not path.exists():
        raise TexnetsError(f"{what} not found: {path}")
    if path.is_dir():
        raise TexnetsError(f"expected {'an' if what[0] in 'aeiou' else 'a'} {what} file, got a directory: {path}"
                           f"{directory_hint}")
    return path
