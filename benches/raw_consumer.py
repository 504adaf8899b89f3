"""The minimal consumer-group runner: the ceiling for a worker that does real bookkeeping.

N forked processes, each: XREADGROUP COUNT 500 BLOCK, json.loads of args and kwargs per
entry, the job's mark, then XACK + XDEL for the batch pipelined into the same write as the
next read. No framework, no retries, no Lua. Runs until killed.
"""

from __future__ import annotations

import json
import os
import sys

import redis

from benches import marks
from benches.raw import GROUP, STREAM


def consume(url: str) -> None:
    client = redis.Redis.from_url(url)
    consumer = f"raw-{os.getpid()}"
    acked: list[bytes] = []
    while True:
        with client.pipeline(transaction=False) as pipe:
            if acked:
                pipe.xack(STREAM, GROUP, *acked)
                pipe.xdel(STREAM, *acked)
            pipe.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=500, block=1000)
            reply = pipe.execute()[-1]
        acked = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                json.loads(fields[b"args"])
                json.loads(fields[b"kwargs"])
                marks.mark()
                acked.append(entry_id)


def main() -> None:
    processes = int(sys.argv[1])
    url = os.environ["BENCH_URL"]
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            try:
                consume(url)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
