"""Two machines, one Redis: ingests that read the same path on two "machines" (each in its own mount and UTS
namespaces on this host: its own file bind-mounted at that path, its own host name), into one redis-server.
Loopback networking and the pid namespace are shared; what tells machines apart in agentwatch (the host name,
the file at the path) is not."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.stack import PYTHON, ROOT, Proc, RedisServer, start_relay, wait_for
from tests.test_faults import append_json
from tests.test_leases import TTL, alive_keys, log_data, tool_calls, tool_ids

reliability = pytest.mark.reliability

# Run the command given after the three arguments on a "machine": this file's folder at the shared path, this name.
ON_A_MACHINE = 'mount --bind "$1" "$2" && hostname "$3" && shift 3 && echo "machine pid $$" && exec "$@"'


def machine(name: str, folder: Path, shared: Path, redis: RedisServer, prefix: str) -> tuple[Proc, int]:
    """An ingest of `shared/events.jsonl` on machine `name`; returns its process and the ingest's own pid."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise RuntimeError("unshare is not installed: apt-get install util-linux (make test installs it)")
    # Root makes the namespaces itself; anyone else needs a user namespace to (where the kernel allows them).
    userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    ingest = [PYTHON, "-m", "ingest", "--redis-url", redis.url, "--events-file", str(shared / "events.jsonl")]
    ingest += ["--prefix", prefix, "--lease-ttl", TTL]
    # --kill-child: if unshare itself is killed (a failed test's clean-up), the ingest goes with it.
    args = [unshare, "--mount", "--uts", "--fork", "--kill-child", *userns, "sh", "-c", ON_A_MACHINE, "sh"]
    proc = Proc([*args, str(folder), str(shared), name, *ingest], env={"AGENTWATCH_HOST": ""})  # gethostname()
    pid = int(proc.wait_line("machine pid").split()[-1])
    proc.wait_line("holding the lease")
    after = next(i for i, line in enumerate(proc.lines) if "holding the lease" in line)
    proc.wait_line(str(shared), start=after + 1)  # where it reads from: lines appended now are new ones
    return proc, pid


def status(redis: RedisServer, prefix: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [PYTHON, "-m", "agentwatch", "status", "--redis-url", redis.url, "--prefix", prefix, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=True,
    )
    rows: list[dict[str, object]] = json.loads(out.stdout)
    return rows


@reliability(
    "Team scale",
    "two machines, one path, one Redis",
    injected="two ingests reading the same path on two machines (own mount and UTS namespaces: a different file "
    "at that path, a different host name), 50 old lines each, 5 new lines each; then one killed (-9), "
    "--lease-ttl 3",
    checked="each new line published exactly once, no old line (--from end); two sources, two hosts, both leases "
    "held (status and /stats); the killed one's agents end as lost within the TTL, once, and the other goes on",
)
def test_two_machines_reading_the_same_path(redis_server: RedisServer, prefix: str, tmp_path: Path) -> None:
    shared = tmp_path / "home" / ".claude" / "agentwatch"  # the path both machines read
    shared.mkdir(parents=True)
    names = ("machine-a", "machine-b")
    files = {}
    for name in names:
        (tmp_path / name).mkdir()
        files[name] = tmp_path / name / "events.jsonl"
        append_json(files[name], tool_calls(f"{name}-old", "old", [f"{name}-old-{i}" for i in range(49)]))
    procs: dict[str, tuple[Proc, int]] = {}
    try:
        for name in names:
            procs[name] = machine(name, tmp_path / name, shared, redis_server, prefix)
        for name in names:
            append_json(files[name], tool_calls(f"s-{name}", "worker", [f"{name}-{i}" for i in range(4)]))
        expected = Counter(f"{name}-{i}" for name in names for i in range(4))
        wait_for(lambda: sum(tool_ids(redis_server, prefix).values()) >= 8, what="8 new calls")
        time.sleep(0.5)  # a line published twice, or an old one, would show by now
        assert tool_ids(redis_server, prefix) == expected  # exactly once each, and no old line at all

        rows = status(redis_server, prefix)
        assert [(r["host"], r["lease"], r["path"]) for r in rows] == [
            (n, "held", str(shared / "events.jsonl")) for n in names
        ]
        assert all(str(r["owner"]).startswith(f"{r['host']}:") for r in rows)
        assert len({r["source"] for r in rows}) == 2  # one path, two sources
        relay, base = start_relay(redis_server.url, prefix)
        try:
            with urllib.request.urlopen(base + "/stats", timeout=5) as response:
                sources = json.load(response)["sources"]
        finally:
            relay.stop()
        assert [(s["source"], s["host"], s["owner"]) for s in sources] == [
            (r["source"], r["host"], r["owner"]) for r in rows
        ]

        assert {"s-machine-a/main", "s-machine-a/worker"} <= alive_keys(redis_server, prefix)
        killed = time.monotonic()
        os.kill(procs["machine-a"][1], signal.SIGKILL)
        wait_for(
            lambda: not any(k.startswith("s-machine-a/") for k in alive_keys(redis_server, prefix)),
            timeout=float(TTL) * 3,
            interval=0.01,
            what="machine-a's agents ended",
        )
        elapsed = time.monotonic() - killed
        print(f"kill -9 to lost: {elapsed:.2f} s (lease TTL {TTL} s)")
        assert elapsed <= float(TTL) + 0.5  # renewed every TTL/3, reaped the moment it expires
        ends = [
            (d["type"], d["agent_id"], d.get("outcome"))
            for d in log_data(redis_server, prefix)
            if d["session_id"] == "s-machine-a"
        ]
        assert ends[-2:] == [("agent_done", "worker", "lost"), ("session_end", "main", None)]
        assert Counter(e[0] for e in ends)["agent_done"] == 1 and Counter(e[0] for e in ends)["session_end"] == 1
        assert procs["machine-b"][0].wait_line("the lease of source machine-a:")

        append_json(files["machine-b"], tool_calls("s-machine-b", "worker", ["machine-b-after"]))
        wait_for(lambda: tool_ids(redis_server, prefix)["machine-b-after"] == 1, what="machine-b goes on")
        assert {"s-machine-b/main", "s-machine-b/worker"} <= alive_keys(redis_server, prefix)
        rows = status(redis_server, prefix)
        assert [(r["host"], r["lease"]) for r in rows] == [("machine-a", "expired"), ("machine-b", "held")]
        assert tool_ids(redis_server, prefix) == expected + Counter(["machine-b-after"])
    finally:
        for proc, pid in procs.values():
            if proc.proc.poll() is None:
                os.kill(pid, signal.SIGTERM)  # the ingest itself: unshare only waits for it
            proc.stop()


def in_a_container(events_file: Path, redis: RedisServer, prefix: str, ttl: str) -> tuple[Proc, int]:
    """An ingest in its own pid namespace, with the host's name passed in (AGENTWATCH_HOST), as compose runs it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise RuntimeError("unshare is not installed: apt-get install util-linux (make test installs it)")
    userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    ingest = [PYTHON, "-m", "ingest", "--redis-url", redis.url, "--events-file", str(events_file), "--prefix", prefix]
    args = [unshare, "--pid", "--fork", "--mount-proc", "--kill-child", *userns, *ingest, "--lease-ttl", ttl]
    proc = Proc(args, env={"AGENTWATCH_HOST": "box"})
    proc.wait_line("holding the lease")
    after = next(i for i, line in enumerate(proc.lines) if "holding the lease" in line)
    proc.wait_line(str(events_file), start=after + 1)
    children = Path(f"/proc/{proc.proc.pid}/task/{proc.proc.pid}/children").read_text().split()
    return proc, int(children[0])  # the ingest's pid out here (in there it is 1)


@reliability(
    "Team scale",
    "a restarted container",
    injected="ingest in its own pid namespace (a container, the host's name passed in) alive, then killed (-9); "
    "each time an ingest started on the same file and host name (--lease-ttl 9)",
    checked="a holder whose pid cannot be checked from here is watched for half the TTL: while it renews, the "
    "newcomer refuses (one line, exit 2); once it is gone, the newcomer takes the lease over and ends nothing",
)
def test_a_restarted_container_takes_over_only_a_dead_holder(
    redis_server: RedisServer, prefix: str, events_file: Path
) -> None:
    events_file.parent.mkdir(parents=True)
    events_file.write_bytes(b"")
    ttl = "9"
    old, old_pid = in_a_container(events_file, redis_server, prefix, ttl)
    new: Proc | None = None
    try:
        append_json(events_file, tool_calls("s1", "a1", ["t1"]))
        wait_for(lambda: alive_keys(redis_server, prefix) == {"s1/main", "s1/a1"}, what="agents")
        args = [PYTHON, "-m", "ingest", "--redis-url", redis_server.url, "--events-file", str(events_file)]
        refused = subprocess.run(
            [*args, "--prefix", prefix, "--lease-ttl", ttl],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
            env={**os.environ, "AGENTWATCH_HOST": "box"},
        )
        assert refused.returncode == 2 and "taking over unless it renews" in refused.stderr
        assert "is held by box:1:" in refused.stderr.strip().splitlines()[-1]
        os.kill(old_pid, signal.SIGKILL)
        old.stop()
        new = Proc([*args, "--prefix", prefix, "--lease-ttl", ttl], env={"AGENTWATCH_HOST": "box"})
        new.wait_line("holding the lease", timeout=15)
        append_json(events_file, tool_calls("s1", "a1", ["t2"]))
        wait_for(lambda: tool_ids(redis_server, prefix)["t2"] == 1, what="t2")
        assert not [d for d in log_data(redis_server, prefix) if d["type"] in ("agent_done", "session_end")]
        assert alive_keys(redis_server, prefix) == {"s1/main", "s1/a1"}
    finally:
        if old.proc.poll() is None:
            os.kill(old_pid, signal.SIGTERM)
        old.stop()
        if new is not None:
            assert new.stop() == 0
