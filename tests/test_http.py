"""http-buffers: a loopback HTTP/1.1 server inside the worker, bodies read into fresh or pooled
buffers; bad peers fail their cells in one line, and a cell leaves no socket or thread behind."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading

import pytest
from poolbench.scenarios.async_http_buffers import AsyncHttpBuffers
from poolbench.scenarios.http_buffers import HttpBuffers, request_for
from typer.testing import CliRunner

from poolbench.cli import app
from poolbench.discovery import discover
from poolbench.strategies import build_strategies

from .test_async import needs_memray


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("tls", ["off", "on"])
def test_a_request_body_lands_whole_in_the_buffer_and_nothing_is_left_open(tls):
    size = 100_003  # not a multiple of any read: the last read is a short one
    body = request_for(size)[-size:]
    fds, threads = open_fds(), set(threading.enumerate())
    scenario = HttpBuffers({"size": size, "tls": tls})
    scenario.setup()
    try:
        served = []

        def serve() -> None:  # two threads, two connections, each with its client thread
            for _ in range(5):
                buf = bytearray(size + 10)
                scenario.use(buf)
                served.append(buf[:size] == body)

        start = threading.Barrier(2)

        def serve_together() -> None:
            start.wait()
            serve()

        workers = [threading.Thread(target=serve_together) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert served == [True] * 10
        assert len(scenario.connections) == 2
        # Opened by two threads at once, each connection's server side is its own client's peer
        # (a teardown joined a client whose peer another connection still held: 10 s hangs).
        assert all(c.sock.getpeername() == c.client_address for c in scenario.connections)
    finally:
        scenario.teardown()
    assert open_fds() == fds
    assert set(threading.enumerate()) == threads


def test_http_buffers_runs_when_named_only():
    found = discover()
    assert "http-buffers" in found.scenarios and "http-buffers" not in found.builtins()
    listed = CliRunner().invoke(app, ["list"])
    assert "runs when named" in listed.output


@needs_memray
@pytest.mark.parametrize(
    "args", [["http-buffers", "-t", "1,2"], ["async-http-buffers", "-c", "1,16"]], ids=["threads", "tasks"]
)
def test_a_fresh_buffer_per_request_costs_its_allocation_and_a_pooled_one_none(args, tmp_path):
    out = tmp_path / "h.json"
    run = ["run", *args, "-p", "size=64KiB", "-P", "none,sync", "--quick", "-o", str(out)]
    result = CliRunner().invoke(app, run)
    assert result.exit_code == 0, result.output
    cells = {
        (c["pool"], c["threads"], c.get("concurrency", 0)): c for c in json.loads(out.read_text())["cells"]
    }
    assert len(cells) == 4 and all(c["status"] == "ok" for c in cells.values())
    for members in {key[1:] for key in cells}:
        none, pooled = cells[("none", *members)]["allocs"], cells[("sync", *members)]["allocs"]
        # The bytearray and its 64 KiB: what pooling saves; the rest (the head's parse, the
        # reads) is the same on both sides.
        assert none["allocations"] / none["ops"] - pooled["allocations"] / pooled["ops"] == pytest.approx(
            2, abs=0.3
        )
        assert none["bytes"] / none["ops"] - pooled["bytes"] / pooled["ops"] >= 64 * 1024


BAD_PEERS = """
import time

from poolbench.scenarios.http_buffers import HttpBuffers


class Truncated(HttpBuffers):
    name = "http-truncated"

    def client(self, sock):
        sock.sendall(self.request[: len(self.request) - 500])  # a body cut short, then gone
        sock.close()


class Stalled(HttpBuffers):
    name = "http-stalled"

    def client(self, sock):
        sock.sendall(self.request[:40])  # part of a head, then silence until the server closes
        sock.settimeout(None)  # the server's read times out, not this one
        try:
            sock.recv(1)
        finally:
            sock.close()
"""


def test_a_peer_closing_mid_body_or_stalling_fails_its_cells_in_one_line_and_the_others_are_saved(tmp_path):
    folder = tmp_path / "peers"
    folder.mkdir()
    (folder / "peers.py").write_text(BAD_PEERS)
    out = tmp_path / "p.json"
    args = ["run", "http-truncated", "http-stalled", "http-buffers", "--scenarios-dir", str(folder)]
    args += ["-p", "size=1KiB", "-p", "timeout=0.5", "-t", "1", "-P", "none,sync", "--quick", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    cells = {(c["scenario"], c["pool"]): c for c in json.loads(out.read_text())["cells"]}
    for pool in ("none", "sync"):
        assert cells[("http-truncated", pool)]["status"] == "failed"
        assert "mid-body: 524 of 1024 bytes" in cells[("http-truncated", pool)]["error"]
        assert cells[("http-stalled", pool)]["status"] == "failed"
        assert "timeout=0.5 s" in cells[("http-stalled", pool)]["error"]
        assert cells[("http-buffers", pool)]["status"] == "ok"


def test_a_port_that_cannot_be_bound_fails_its_cells_with_the_reason(tmp_path):
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    out = tmp_path / "b.json"
    try:
        result = CliRunner().invoke(
            app,
            [
                "run",
                "http-buffers",
                "-p",
                f"port={port}",
                "-t",
                "1",
                "-P",
                "none,sync",
                "--quick",
                "-o",
                str(out),
            ],
        )
    finally:
        taken.close()
    assert result.exit_code == 1 and "Traceback" not in result.output
    cells = json.loads(out.read_text())["cells"]
    assert {c["status"] for c in cells} == {"failed"}
    assert all(f"cannot listen on 127.0.0.1:{port}" in c["error"] for c in cells)


def test_both_paths_take_their_buffer_from_where_poolbench_says():
    scenario = HttpBuffers({"size": 2048})
    scenario.setup()
    try:
        strategies = {s.name: s for s in build_strategies(scenario, ["none", "sync"], 1)}
        pooled = strategies["sync"]
        buf = pooled.get()
        scenario.use(buf)
        pooled.put(buf)
        assert pooled.get() is buf  # the body was read into the pool's buffer, which came back
    finally:
        scenario.teardown()


# async-http-buffers: the same server on the worker's event loop


@pytest.mark.parametrize("read", ["buffered", "data_received"])
@pytest.mark.parametrize("tls", ["off", "on"])
def test_an_async_request_body_lands_whole_in_the_buffer_and_nothing_is_left_open(read, tls):
    size = 100_003
    body = request_for(size)[-size:]
    fds = open_fds()
    scenario = AsyncHttpBuffers({"size": size, "tls": tls, "read": read})
    seen: list[bool] = []

    async def main() -> None:
        await scenario.setup()
        try:
            # three tasks, three connections, each buffer checked as it is given back
            def put(buf: bytearray) -> None:
                seen.append(buf[:size] == body)

            await asyncio.gather(*(scenario.run(4, lambda: bytearray(size), put) for _ in range(3)))
            assert len(scenario.exchanges) == 3
        finally:
            await scenario.teardown()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen == [True] * 12
    assert open_fds() == fds


ASYNC_BAD_PEERS = """
from poolbench.scenarios.async_http_buffers import AsyncHttpBuffers


class Truncated(AsyncHttpBuffers):
    name = "async-http-truncated"

    def send(self, exchange):
        exchange.client.transport.write(self.request[: len(self.request) - 500])  # cut short, then gone
        exchange.client.transport.close()


class Stalled(AsyncHttpBuffers):
    name = "async-http-stalled"

    def send(self, exchange):
        exchange.client.transport.write(self.request[:40])  # part of a head, then silence
"""


def test_an_async_peer_closing_mid_body_or_stalling_fails_its_cells_in_one_line(tmp_path):
    folder = tmp_path / "peers"
    folder.mkdir()
    (folder / "peers.py").write_text(ASYNC_BAD_PEERS)
    out = tmp_path / "p.json"
    args = ["run", "async-http-truncated", "async-http-stalled", "async-http-buffers", "--scenarios-dir"]
    args += [str(folder), "-p", "size=1KiB", "-p", "timeout=0.5", "-c", "2", "-P", "none,sync", "--quick"]
    result = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    cells = {(c["scenario"], c["pool"]): c for c in json.loads(out.read_text())["cells"]}
    for pool in ("none", "sync"):
        assert cells[("async-http-truncated", pool)]["status"] == "failed"
        assert "mid-body: 524 of 1024 bytes" in cells[("async-http-truncated", pool)]["error"]
        assert cells[("async-http-stalled", pool)]["status"] == "failed"
        assert "no response within timeout=0.5 s" in cells[("async-http-stalled", pool)]["error"]
        assert cells[("async-http-buffers", pool)]["status"] == "ok"


def test_an_async_server_whose_port_cannot_be_bound_fails_its_cells_with_the_reason(tmp_path):
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    out = tmp_path / "b.json"
    try:
        args = ["run", "async-http-buffers", "-p", f"port={port}", "-c", "1", "-P", "none,sync", "--quick"]
        result = CliRunner().invoke(app, [*args, "-o", str(out)])
    finally:
        taken.close()
    assert result.exit_code == 1 and "Traceback" not in result.output
    cells = json.loads(out.read_text())["cells"]
    assert {c["status"] for c in cells} == {"failed"}
    assert all(f"cannot listen on 127.0.0.1:{port}" in c["error"] for c in cells)


# http-client: connections per request, through http.client, urllib3 and httpx


def children() -> set[int]:
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.mark.parametrize(
    "client,plugin", [("http.client", "bounded"), ("urllib3", "urllib3"), ("httpx", "httpx")]
)
@pytest.mark.parametrize("tls", ["off", "on"])
def test_connect_per_request_opens_a_connection_each_time_and_a_pool_one(client, plugin, tls):
    from poolbench.scenarios.http_client import HttpClient

    fds, threads, kids = open_fds(), set(threading.enumerate()), children()
    scenario = HttpClient({"size": 3000, "tls": tls, "client": client})
    scenario.setup()
    try:
        strategies = {s.name: s for s in build_strategies(scenario, ["none", "sync", plugin], 1)}
        opened = []
        for name in ("none", "sync", plugin):
            before = scenario.server.accepted()
            s = strategies[name]
            scenario.run(20, s.get, s.put)
            opened.append(scenario.server.accepted() - before)
        assert opened == [20, 1, 1]  # the server counted them
        for s in strategies.values():
            if s.pool is not None:
                s.pool.clear()
        del strategies, s
    finally:
        scenario.teardown()
    assert children() == kids  # the server process is gone
    assert open_fds() == fds
    assert set(threading.enumerate()) == threads


def test_a_client_plugin_for_another_library_skips_the_cells_with_the_fix(tmp_path):
    out = tmp_path / "c.json"
    args = [
        "run",
        "http-client",
        "-p",
        "client=httpx",
        "-t",
        "1",
        "-P",
        "none,urllib3",
        "--quick",
        "-o",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cells = {c["pool"]: c for c in json.loads(out.read_text())["cells"]}
    # as async-db's drivers: the group is skipped, with the fix
    assert {c["status"] for c in cells.values()} == {"skipped"}
    assert "-p client=urllib3" in cells["urllib3"]["error"]


def test_a_server_that_went_away_fails_the_request_in_one_line():
    from poolbench.scenarios.http_client import HttpClient

    scenario = HttpClient({"client": "http.client"})
    scenario.setup()
    try:
        scenario.server.process.kill()
        scenario.server.process.wait()
        with pytest.raises(ConnectionRefusedError):
            scenario.run(1, scenario.new, None)
    finally:
        scenario.teardown()


@pytest.mark.parametrize("tls", ["off", "on"])
def test_aiohttp_opens_a_connection_per_request_unpooled_and_one_pooled_and_leaves_nothing(tls):
    from poolbench.scenarios.async_http_client import AsyncHttpClient

    fds, kids = open_fds(), children()
    scenario = AsyncHttpClient({"size": 3000, "tls": tls})
    scenario.setup()
    opened = []

    async def main() -> None:
        strategies = {
            s.name: s for s in build_strategies(scenario, ["none", "sync", "bounded", "aiohttp"], 1)
        }
        for name in ("none", "sync", "bounded", "aiohttp"):
            before = scenario.server.accepted()
            s = strategies[name]
            await scenario.run(20, s.get, s.put)
            opened.append(scenario.server.accepted() - before)
        for s in strategies.values():
            if s.pool is not None:
                s.pool.clear()
        await scenario.teardown()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert opened == [20, 1, 1, 1]  # the server counted them
    assert children() == kids
    assert open_fds() == fds


@pytest.mark.parametrize("client", ["http.client", "urllib3", "httpx"])
def test_a_server_that_accepts_and_never_answers_times_the_request_out_in_one_line(client):
    from poolbench.scenarios.http_client import HttpClient

    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nobody answers
    scenario = HttpClient({"client": client, "timeout": 0.3})
    scenario.setup()
    try:
        scenario.port = silent.getsockname()[1]
        scenario.url = f"http://127.0.0.1:{scenario.port}/"
        scenario._new = scenario._maker(client)
        with pytest.raises(TimeoutError, match=r"no response within timeout=0.3 s"):
            scenario.run(1, scenario.new, None)
    finally:
        scenario.teardown()
        silent.close()


def test_an_aiohttp_request_to_a_server_that_never_answers_times_out_in_one_line():
    from poolbench.scenarios.async_http_client import AsyncHttpClient

    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nobody answers
    scenario = AsyncHttpClient({"timeout": 0.3})
    scenario.setup()
    scenario.url = f"http://127.0.0.1:{silent.getsockname()[1]}/"

    async def main() -> None:
        try:
            with pytest.raises(TimeoutError, match=r"no response within timeout=0.3 s"):
                await scenario.run(1, scenario.new, None)
        finally:
            await scenario.teardown()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        silent.close()


def test_the_http_server_starts_from_a_folder_holding_a_poolbench_package_of_its_own(tmp_path):
    from poolbench.scenarios.http_client import HttpClient

    (tmp_path / "poolbench").mkdir()  # a checkout of poolbench: its folder has no scenarios package
    (tmp_path / "poolbench" / "__init__.py").write_text("")
    scenario = HttpClient({"client": "http.client"})
    scenario.setup()  # the working directory is tmp_path
    try:
        scenario.run(3, scenario.new, None)
        assert scenario.server.accepted() == 3
    finally:
        scenario.teardown()


def test_connections_opened_per_1000_requests_are_a_figure_of_the_result_file(tmp_path):
    out = tmp_path / "c.json"
    run = ["run", "http-client", "-P", "none,sync", "-t", "1,2", "--quick", "-o", str(out)]
    result = CliRunner().invoke(app, run)
    assert result.exit_code == 0, result.output
    cells = {(c["pool"], c["threads"]): c for c in json.loads(out.read_text())["cells"]}
    for (pool, _threads), cell in cells.items():
        rates = [r["per_1000_ops"]["connections"] for r in cell["runs"]]
        # Every timed request of none connected (the server counted them); sync's connections
        # were all opened before its values: none in them.
        assert rates == [1000.0] * len(rates) if pool == "none" else rates == [0.0] * len(rates)
    shown = CliRunner().invoke(app, ["show", str(out), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    summary = {(c["pool"], c["threads"]): c["per_1000_ops"] for c in json.loads(shown.output)["cells"]}
    assert summary == {
        (p, t): {"connections": 1000.0 if p == "none" else 0.0} for p in ("none", "sync") for t in (1, 2)
    }
    csv = CliRunner().invoke(app, ["show", str(out), "--format", "csv"])
    assert "connections=1000" in csv.output and "connections=0" in csv.output
    markdown = CliRunner().invoke(app, ["show", str(out), "--format", "markdown"])
    assert "connections/1k ops" in markdown.output
    table = CliRunner().invoke(app, ["show", str(out)], terminal_width=200)
    assert "/1k ops" in table.output
    benchstat = CliRunner().invoke(app, ["show", str(out), "--format", "benchstat"])
    assert benchstat.exit_code == 0, benchstat.output
    assert "1 connections/op" in benchstat.output and "0 connections/op" in benchstat.output
