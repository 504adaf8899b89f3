"""The minimal consumer-group runner: the ceiling for a worker that does real bookkeeping.

N forked processes, each on one raw connection (redis-py's Connection with hiredis, no
client-side reply callbacks): XREADGROUP COUNT 500 BLOCK, json.loads of args and kwargs per
entry, the job's mark, then XACK + XDEL for the batch written in the same packet as the
next read. No framework, no retries, no Lua, no per-job objects. Runs until killed.
A ``bench.echo`` job (the result round trip's floor) LPUSHes its argument to
``result_key(job id)``, in the same packet as the ack and the next read.
``--no-decode`` skips the JSON: what the server and the socket allow, the bare ceiling.
"""

from __future__ import annotations

import json
import os
import sys

import redis

from benches import marks
from benches.raw import GROUP, STREAM, result_key


def consume(url: str, decode: bool = True) -> None:
    connection = redis.Redis.from_url(url, protocol=2).connection_pool.make_connection()
    consumer = f"raw-{os.getpid()}".encode()
    read = connection.pack_command("XREADGROUP", "GROUP", GROUP, consumer, "COUNT", 500, "BLOCK", 1000, "STREAMS", STREAM, ">")
    acked: list[bytes] = []
    results: list[tuple[bytes, bytes]] = []
    while True:
        commands = []
        for key, value in results:
            commands += connection.pack_command("LPUSH", key, value)
        if acked:
            commands += connection.pack_command("XACK", STREAM, GROUP, *acked)
            commands += connection.pack_command("XDEL", STREAM, *acked)
        connection.send_packed_command([b"".join(commands + read)])
        for _ in results:
            connection.read_response()
        if acked:
            connection.read_response()
            connection.read_response()
        reply = connection.read_response()
        acked = []
        results = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                # fields: id, <id>, task, <task>, args, <args>, kwargs, <kwargs>, ...
                if decode:
                    args = json.loads(fields[5])
                    json.loads(fields[7])
                    if fields[3] == b"bench.probe":  # a latency probe: args = [sent_at]
                        marks.mark_latency(args[0])
                        acked.append(entry_id)
                        continue
                    if fields[3] == b"bench.echo":  # a result round trip: LPUSH the return value
                        results.append((result_key(fields[1]), json.dumps(args[0]).encode()))
                        acked.append(entry_id)
                        continue
                marks.mark()
                acked.append(entry_id)


def main() -> None:
    processes = int(sys.argv[1])
    decode = "--no-decode" not in sys.argv[2:]
    url = os.environ["BENCH_URL"]
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            try:
                consume(url, decode)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
