"""Benchmarks of the whole path (hook, ingest, Redis, relay, page): `python -m bench` writes docs/performance.md."""
