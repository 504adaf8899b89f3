"""What lifecycle events cost: ``python -m benches.events_publish [EVENTS] [BATCH]``.

Starts a valkey-server, publishes EVENTS events (default 100 000) through ``EventBatch`` in
batches of BATCH (default 500) on one raw connection, as a worker would, and prints per event:
the client's time to add, build the JSON (``commands()``) and pack RESP, the wall time of
sending and reading the replies, and the server's CPU (``INFO cpu`` before and after, so
network parsing counts too). Then the same events as plain pipelined PUBLISH commands (one
per job channel plus one array on ``all``), for comparison with the Lua script.
"""

from __future__ import annotations

import sys
import time

import redis

from qrun import scripts
from qrun.connection import make_client, make_raw_connection
from qrun.embedded import EmbeddedValkey
from qrun.events import EventBatch, all_channel, job_channel

JOB_ID = "6f1c2d9e" * 4


def server_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def through_script(client: redis.Redis, events: int, batch_size: int) -> None:
    batch = EventBatch("qrun")
    connection = make_raw_connection(client)
    add_s = build_s = pack_s = send_s = 0.0
    cpu_before = server_cpu_s(client)
    for start in range(0, events, batch_size):
        t0 = time.perf_counter()
        for _ in range(min(batch_size, events - start)):
            batch.add("succeeded", "emails", JOB_ID, "app.send_email", 1)
        t1 = time.perf_counter()
        commands = batch.commands()
        t2 = time.perf_counter()
        packed = [b"".join(connection.pack_command(*command)) for command in commands]
        t3 = time.perf_counter()
        connection.send_packed_command([b"".join(packed)])  # one write
        for _ in packed:
            connection.read_response()
        t4 = time.perf_counter()
        add_s, build_s, pack_s, send_s = add_s + t1 - t0, build_s + t2 - t1, pack_s + t3 - t2, send_s + t4 - t3
    server_s = server_cpu_s(client) - cpu_before
    connection.disconnect()

    def us(seconds: float) -> str:
        return f"{seconds / events * 1e6:.2f}"

    print(
        f"publish_events.lua: client {us(add_s + build_s + pack_s)} µs/event (add {us(add_s)}, JSON {us(build_s)}, "
        f"pack {us(pack_s)}); send + replies {us(send_s)}; server CPU {us(server_s)} µs/event; "
        f"{events // batch_size} EVALSHA",
        flush=True,
    )


def through_plain_publish(client: redis.Redis, events: int, batch_size: int) -> None:
    batch = EventBatch("qrun")
    connection = make_raw_connection(client)
    client_s = send_s = 0.0
    cpu_before = server_cpu_s(client)
    channel = job_channel("qrun", JOB_ID)
    for start in range(0, events, batch_size):
        t0 = time.perf_counter()
        for _ in range(min(batch_size, events - start)):
            batch.add("succeeded", "emails", JOB_ID, "app.send_email", 1)
        messages = [str(argument) for command in batch.commands() for argument in command[6::2]]
        packed = [b"".join(connection.pack_command("PUBLISH", channel, message)) for message in messages]
        packed.append(b"".join(connection.pack_command("PUBLISH", all_channel("qrun"), f"[{','.join(messages)}]")))
        t1 = time.perf_counter()
        connection.send_packed_command([b"".join(packed)])  # one write
        for _ in packed:
            connection.read_response()
        t2 = time.perf_counter()
        client_s, send_s = client_s + t1 - t0, send_s + t2 - t1
    server_s = server_cpu_s(client) - cpu_before
    connection.disconnect()
    print(
        f"plain PUBLISH pipeline: client {client_s / events * 1e6:.2f} µs/event; send + replies "
        f"{send_s / events * 1e6:.2f}; server CPU {server_s / events * 1e6:.2f} µs/event",
        flush=True,
    )


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    batch_size = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    server = EmbeddedValkey().start()
    try:
        client = make_client(server.url)
        scripts.load_all(client)
        through_script(client, min(events, 10_000), batch_size)  # warm-up
        for _ in range(2):
            through_script(client, events, batch_size)
            through_plain_publish(client, events, batch_size)
        client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
