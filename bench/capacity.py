"""Sizing a team from the run's per-process figures: pure functions, no I/O (tests/test_bench_smoke.py).

Every developer's ingest commits its own trickle of lines to the team's Redis; every viewer follows the whole
team's stream through a relay. So, for D developers, each with V viewers open, producing r events/s each:
  events/s       = D r                  (what Redis commits and publishes)
  messages/s     = D r x D V            (what the relays write: every event to every viewer, growing as D^2)
  Redis commands = events/s x commands per event, and its one core = events/s x CPU per event
  relays         = messages/s / what one relay delivers (the fan-out figure), run as stateless processes
  relay memory   = relays x RSS at rest + viewers x KiB per viewer
  network out    = messages/s x bytes per message (the relays' side; Redis sends each event once per relay)
Each figure says which measurement it rests on; a figure the run did not measure leaves its columns empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SIZES = (10, 100, 1000)
VIEWERS_PER_DEVELOPER = (1, 3)  # a parameter: 1 by default, 3 shown too
CORES_PER_MACHINE = 8  # a parameter: one relay is one process on one core; a machine of 8 cores runs 8
REDIS_BUSY = 0.5  # a Redis core past half busy has no room for bursts, replays and snapshots: past it, split


@dataclass(frozen=True)
class Figure:
    value: float | None
    source: str  # where in this run it was measured


@dataclass(frozen=True)
class Inputs:
    rate_median: Figure  # events/s of one developer
    rate_busy: Figure
    redis_commands_per_event: Figure
    redis_us_per_event: Figure
    relay_messages_per_s: Figure  # what one relay process delivers within p99 100 ms
    kib_per_viewer: Figure
    relay_rest_kib: Figure
    bytes_per_message: Figure
    # Shown beside the live figure, not used: ingest catching up commits 2 000 lines at a time.
    redis_commands_per_event_catch_up: Figure = Figure(None, "")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value <= 0:
        return None
    return float(value)


def inputs(results: dict[str, Any], developers: dict[str, Any]) -> Inputs:
    """The figures the table rests on, read from one run's results and the developer rates (bench/dev_rate.py)."""
    rate = "real installs and the fixture session"
    live = _live_cell(results)
    cell_name = f"latency cell {live['rate']:,} events/s to {live['viewers']} viewer(s)" if live else ""
    commands = _num(live.get("redis_ops", {}).get("per_event")) if live else None
    commands_source = f"INFO commandstats over the {cell_name}" if commands else ""
    catch_up = results.get("ingest", {}).get("results", {}).get("agentwatch ingest", {})
    batched = _num(catch_up.get("redis_ops", {}).get("per_event"))
    batched_source = "INFO commandstats over the ingest throughput runs (not used: a team commits lines singly)"
    if commands is None:  # no live cell: the catch-up run's, which undercounts a team's (big batches)
        commands, commands_source = batched, "INFO commandstats over the ingest throughput runs" if batched else ""
    redis_pct = _num(live.get("cpu_pct", {}).get("redis-server")) if live else None
    redis_us = redis_pct * 1e4 / live["rate"] if live and redis_pct else None
    fan = results.get("fanout", {}).get("relays", {}).get("1", {})
    idle = results.get("memory", {}).get("idle", {}).get("agentwatch", {})
    wire = _wire_cell(results)
    per_message = wire["bytes"] / wire["received"] if wire else None
    return Inputs(
        rate_median=Figure(_num(developers.get("median_per_s")), f"median session, {rate}"),
        rate_busy=Figure(_num(developers.get("busy_per_s")), f"busiest minute, {rate}"),
        redis_commands_per_event=Figure(commands, commands_source),
        redis_us_per_event=Figure(redis_us, f"redis-server CPU over the {cell_name}" if redis_us else ""),
        relay_messages_per_s=Figure(
            _num(fan.get("max_per_relay")),
            f"fan-out, one relay, {results.get('fanout', {}).get('plan', {}).get('viewers')} viewers, best passing step"
            + (" (a floor: every step passed)" if fan.get("all_passed") else ""),
        ),
        kib_per_viewer=Figure(_num(idle.get("kib_per_viewer")), "memory, idle viewers"),
        relay_rest_kib=Figure(_num(idle.get("rss_kib_0")), "memory, relay RSS with no viewer"),
        bytes_per_message=Figure(
            per_message,
            f"bytes the viewers received / messages, latency cell {wire['rate']:,} events/s to {wire['viewers']}"
            if wire
            else "",
        ),
        redis_commands_per_event_catch_up=Figure(batched, batched_source if batched else ""),
    )


def _agentwatch_cells(results: dict[str, Any]) -> list[dict[str, Any]]:
    cells = results.get("latency", {}).get("cells", [])
    return [c for c in cells if c.get("system") == "agentwatch" and "saturated" not in c and c.get("received")]


def _live_cell(results: dict[str, Any]) -> dict[str, Any] | None:
    """The cell whose Redis cost per event stands for a team: each developer's ingest commits its trickle one
    line at a time, so the lowest rate (a line per commit) with the fewest viewers (the relays' own reads
    least). Its CPU includes the server's idle work: an upper bound, which errs towards a bigger Redis."""
    cells = _agentwatch_cells(results)
    if not cells:
        return None
    return min(cells, key=lambda c: (c["viewers"], c["rate"]))


def _wire_cell(results: dict[str, Any]) -> dict[str, Any] | None:
    """The cell with the most messages received: its bytes per message are the steadiest."""
    cells = [c for c in _agentwatch_cells(results) if c.get("bytes")]
    return max(cells, key=lambda c: c["received"], default=None)


def reached_at(rate: float, viewers_per_developer: float, capacity: float) -> float:
    """Developers at which D r x D V messages/s reach `capacity`: D = sqrt(capacity / (r V))."""
    return math.sqrt(capacity / (rate * viewers_per_developer))


def size(inp: Inputs, developers: int, viewers_per_developer: int, cores: int = CORES_PER_MACHINE) -> dict[str, Any]:
    """One row of the table: the team's load at its busy rate, what carries it, and the first limit it meets."""
    busy = inp.rate_busy.value or math.nan
    median = inp.rate_median.value or math.nan
    events = developers * busy
    viewers = developers * viewers_per_developer
    messages = events * viewers
    relay_capacity = inp.relay_messages_per_s.value
    relays = max(1, math.ceil(messages / relay_capacity)) if relay_capacity and not math.isnan(messages) else None
    redis_core = events * inp.redis_us_per_event.value / 1e6 if inp.redis_us_per_event.value else None
    commands = events * inp.redis_commands_per_event.value if inp.redis_commands_per_event.value else None
    memory = None
    if relays and inp.kib_per_viewer.value and inp.relay_rest_kib.value:
        memory = relays * inp.relay_rest_kib.value + viewers * inp.kib_per_viewer.value
    network = messages * inp.bytes_per_message.value if inp.bytes_per_message.value else None
    limits = first_limits(inp, viewers_per_developer)
    first = min(limits, key=lambda lim: lim[1]) if limits else None
    return {
        "developers": developers,
        "viewers": viewers,
        "events_per_s_median": developers * median,
        "events_per_s": events,
        "messages_per_s": messages,
        "redis_commands_per_s": commands,
        "redis_core": redis_core,
        "relays": relays,
        "machines": math.ceil(relays / cores) if relays else None,
        "relay_memory_kib": memory,
        "network_bytes_per_s": network,
        "first_limit": first[0] if first else None,
        "first_limit_at": first[1] if first else None,
        "limits": {name: at for name, at in limits},
        "carried_by": carried_by(relays, redis_core, cores),
    }


def first_limits(inp: Inputs, viewers_per_developer: int) -> list[tuple[str, float]]:
    """(limit, developers at which the team reaches it), for each limit the run has figures for."""
    out = []
    busy = inp.rate_busy.value
    if busy and inp.redis_us_per_event.value:
        # One prefix is one hash slot on a Cluster: its shard's one core is the same ceiling as a single Redis.
        out.append(
            (
                "one Redis core (single Redis, or the Cluster shard of the prefix's slot)",
                1e6 / (busy * inp.redis_us_per_event.value),
            )
        )
    if busy and inp.relay_messages_per_s.value:
        out.append(
            ("pub/sub fan-out past one relay", reached_at(busy, viewers_per_developer, inp.relay_messages_per_s.value))
        )
    return out


def carried_by(relays: int | None, redis_core: float | None, cores: int) -> str:
    """Which engine carries a size: one Redis (Sentinel for failover) or a Cluster of team prefixes, and one
    relay or N stateless relays behind a load balancer, on how many machines of `cores` cores."""
    if relays is None or redis_core is None:
        return "–"
    if redis_core <= REDIS_BUSY:
        redis = "one Redis primary (Sentinel for failover)"
    else:
        redis = "Redis Cluster with the team split into prefixes (one slot each), Sentinel-like failover per shard"
    if relays == 1:
        return f"{redis}; one relay"
    machines = math.ceil(relays / cores)
    where = "one machine" if machines == 1 else f"{machines:,} machines of {cores} cores"
    return f"{redis}; {relays:,} stateless relays behind a load balancer ({where})"


def table(inp: Inputs) -> list[dict[str, Any]]:
    return [size(inp, d, v) for v in VIEWERS_PER_DEVELOPER for d in SIZES]
