"""Which viewers a relay over capacity sheds (relay/overload.py), and that its batches are built once."""

from __future__ import annotations

from relay.fanout import Fanout, Viewer
from relay.overload import MIN_BEHIND, to_shed


def test_the_slowest_tenth_is_shed_and_always_at_least_one() -> None:
    viewers = [Viewer() for _ in range(25)]
    behind = [(v, MIN_BEHIND + i * 7 % 25, 0.0) for i, v in enumerate(viewers)]
    shed = to_shed(behind, len(viewers))
    assert len(shed) == 2
    assert sorted(b - MIN_BEHIND for v, b, _ in behind if v in shed) == [23, 24]
    assert len(to_shed(behind[:3], 3)) == 1
    # Nearly caught up, however late the loop: the machine paused the relay, closing viewers would not help.
    assert to_shed([(v, MIN_BEHIND - 1, 0.0) for v in viewers], len(viewers)) == []
    # A viewer blocked in a send (its socket full) goes first, however few items wait for it in the buffer.
    stuck = [(v, 0, 0.0) for v in viewers[:20]] + [(viewers[20], 0, 0.3), (viewers[21], 500, 0.0)]
    assert to_shed(stuck, 22) == [viewers[20], viewers[21]]


def test_a_viewer_too_far_behind_is_closed_even_while_its_writer_is_busy() -> None:
    fanout = Fanout(backlog=4)
    calm, stuck = Viewer(), Viewer()
    interrupted: list[Viewer] = []
    stuck.on_overflow = lambda: interrupted.append(stuck)
    fanout.add(calm)
    fanout.add(stuck)
    for seq in range(1, 5):
        fanout.push((seq, f'{{"seq":{seq}}}'))
    fanout.flush()
    assert not stuck.fell_behind.is_set()  # exactly the backlog: still in
    calm.pos = fanout.head  # the calm one sent everything
    fanout.push((5, '{"seq":5}'))
    fanout.flush()
    assert stuck.fell_behind.is_set() and interrupted == [stuck] and not calm.fell_behind.is_set()


def test_viewers_in_step_share_one_batch_text() -> None:
    fanout = Fanout(backlog=100)
    texts = [f'{{"type":"event","seq":{s}}}' for s in range(1, 4)]
    first = fanout.frame(10, texts)
    assert first == "[" + ",".join(texts) + "]"
    assert fanout.frame(10, list(texts)) is first  # built once for every viewer of the same slice
    assert fanout.frame(10, texts[:1]) == texts[0]  # a lone message goes alone


async def test_viewer_connections_send_without_nagle() -> None:
    """A frame must leave at once: asyncio turns Nagle off only on sockets made as IPPROTO_TCP (with proto 0,
    frames of several events waited for the viewer's delayed ACK, up to 40 ms)."""
    import asyncio
    import socket

    from relay.__main__ import bind_socket
    from relay.settings import Settings
    from tests.stack import free_port

    sock = bind_socket(Settings(port=free_port()))
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_side = writer.get_extra_info("socket")
        seen.set_result(server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(seen, 5) == 1
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_loop_late_twice_in_a_row_sheds_the_slowest_viewer_and_once_sheds_nobody() -> None:
    import asyncio
    import time

    from relay.overload import CHECK_EVERY_S, monitor

    viewers = [Viewer() for _ in range(5)]
    behind = {v: MIN_BEHIND * (i + 1) for i, v in enumerate(viewers)}
    stats = {"shed": 0, "loop_lag_ms": 0}
    task = asyncio.create_task(monitor(lambda: set(viewers), behind.__getitem__, stats, max_lag_s=0.1))
    try:
        await asyncio.sleep(CHECK_EVERY_S * 1.5)
        time.sleep(0.25)  # noqa: ASYNC251 - the point: the whole loop stalls once, a late check, nobody shed
        await asyncio.sleep(CHECK_EVERY_S * 3)
        assert stats["shed"] == 0
        for _ in range(2):  # late on two checks in a row: over capacity
            time.sleep(0.25)  # noqa: ASYNC251 - stalled again, right after the monitor's check
            await asyncio.sleep(0.01)  # the monitor checks (late) and sets its next timer
        await asyncio.sleep(0.01)
        assert stats["shed"] >= 1
        assert viewers[-1].shed and viewers[-1].fell_behind.is_set()
        assert not any(v.shed for v in viewers[:3])
    finally:
        task.cancel()
