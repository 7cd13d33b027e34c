"""A start-up check: the events file holds raw prompts and tool output, so only its owner should read it.

The hook creates the directory 0700 and the file 0600, but it never changes an existing one (a file made by an
older hook, or by hand, keeps its mode): ingest says so once, with the command that fixes it.
"""

from __future__ import annotations

import logging
import os
import shlex
import stat
from pathlib import Path

READABLE_BY_OTHERS = stat.S_IRGRP | stat.S_IROTH


def warn_readable(events_file: Path, logger: logging.Logger) -> list[str]:
    """Log one warning per group- or world-readable path (the directory, the file, its rotated .1).

    Returns the warnings logged. A path that does not exist (yet) is not a problem: the hook creates it private.
    """
    rotated = events_file.with_name(events_file.name + ".1")
    checks = ((events_file.parent, "directory", "700"), (events_file, "file", "600"), (rotated, "file", "600"))
    warnings = []
    for path, kind, fix in checks:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            continue
        if mode & READABLE_BY_OTHERS:
            message = (
                f"events {kind} {path} has mode {mode:04o}: readable by "
                f"{_who(mode)}, and it holds raw prompts and tool output; fix: chmod {fix} {shlex.quote(str(path))}"
            )
            logger.warning("%s", message)
            warnings.append(message)
    return warnings


def _who(mode: int) -> str:
    if mode & stat.S_IRGRP and mode & stat.S_IROTH:
        return "group and others"
    return "group" if mode & stat.S_IRGRP else "others"
