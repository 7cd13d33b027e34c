"""`python -m ingest` with one setting that has no flag changed, for side-by-side runs of settings values.

python -m bench.ingest_variant --watch-step-ms N [python -m ingest's arguments]
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys

from ingest.__main__ import parse, serve


def main(argv: list[str]) -> int:
    step = int(argv[argv.index("--watch-step-ms") + 1])
    rest = [a for i, a in enumerate(argv) if a != "--watch-step-ms" and (i == 0 or argv[i - 1] != "--watch-step-ms")]
    settings = dataclasses.replace(parse(rest, "bench.ingest_variant"), watch_step_ms=step)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
