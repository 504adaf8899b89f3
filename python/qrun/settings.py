"""Defaults, with their units in their names, in one module.

Every tunable qrun has starts here; ``docs/operations.md`` lists them for operators.
"""

from __future__ import annotations

#: Server URL used when neither an argument nor ``QRUN_URL`` names one.
DEFAULT_URL = "redis://127.0.0.1:6379/0"

#: Environment variable that overrides the default URL.
URL_ENV_VAR = "QRUN_URL"

#: Namespace of every key; one prefix per deployment or tenant.
DEFAULT_PREFIX = "qrun"

#: Consumer group shared by all workers of a queue.
CONSUMER_GROUP = "workers"

#: Retries after the first attempt before a failing job is dead-lettered.
DEFAULT_RETRIES = 3

#: First retry delay; each later retry doubles it, up to the cap.
DEFAULT_BACKOFF_BASE_S = 1.0

#: Longest delay between two attempts.
DEFAULT_BACKOFF_CAP_S = 300.0

#: Jobs per EVALSHA when enqueueing in bulk; larger batches block the server longer.
ENQUEUE_BATCH_SIZE = 1_000

#: How long a worker's XREADGROUP blocks before it looks at its stop flag again.
READ_BLOCK_MS = 1_000

#: Extra seconds a worker waits for a blocking read's reply beyond READ_BLOCK_MS.
READ_TIMEOUT_MARGIN_S = 10.0

#: Most entries one worker fetches at once; it starts at 1 and grows only while jobs are fast.
MAX_PREFETCH = 512

#: A finished job's ack leaves the worker (written to its socket, the reply read later)
#: within about this much of the worker's running time, while jobs keep finishing; when one
#: job runs long, the long-job handler sends the acks owed at once. So a worker killed
#: mid-batch reruns the job it was running plus at most the jobs finished in that window.
ACK_WINDOW_S = 0.001

#: A batch whose jobs ran faster than this on average lets the next read fetch more.
FAST_JOB_S = 0.002

#: A worker fetches no more than about this much work at once, judged by its last batch, so
#: jobs it holds never wait long while another worker idles.
BATCH_WORK_S = 0.005

#: How long a delivered job stays hidden before the claimer may hand it to another worker.
#: Live workers' jobs are extended by their supervisor, so this only bounds how long a job
#: of a dead worker (or dead host) waits before it is redelivered.
DEFAULT_VISIBILITY_TIMEOUT_S = 30.0

#: Deliveries without an ack (the worker died each time) before a job is dead-lettered.
DEFAULT_MAX_DELIVERIES = 5

#: How long a settled job's return value (and its record) is kept, by default: None keeps
#: none, so a job pays nothing for results unless its task or queue sets ``result_ttl``.
DEFAULT_RESULT_TTL_S: float | None = None
#: Largest return value kept, as JSON bytes; a larger one dead-letters its job with the reason.
DEFAULT_MAX_RESULT_BYTES = 1_048_576
#: How long the record of a job that has not settled yet lives (its state, progress): a
#: bound, so a record whose job was purged does not stay forever.
JOB_RECORD_TTL_S = 7 * 86_400.0
#: How long the outcome of a cancelled job is kept when its task keeps no results.
CANCELLED_RECORD_TTL_S = 86_400.0
#: How long a cancel mark of a job a worker held stays when nobody acted on it (the job
#: settled first, or its queue is no longer served): cleared by the trim pass after this.
CANCEL_MARK_TTL_S = 86_400.0
#: How long a running job has, once told it is cancelled (``JobCancelled`` raised in it),
#: before its supervisor kills its worker.
CANCEL_GRACE_S = 10.0
#: A job's progress() is written at most this often; calls in between are kept locally and
#: the newest goes with the next write, so a tight loop cannot flood the server.
PROGRESS_INTERVAL_S = 0.25
#: How long a blocking wait for a result blocks in one command (it waits again until its
#: timeout; one command per this long per waiter, never a poll).
RESULT_WAIT_CHUNK_S = 30.0
#: How long dead-lettered jobs are kept before the maintenance thread trims them (7 days).
DEFAULT_DEAD_RETENTION_S = 7 * 86_400.0

#: Whether queues publish lifecycle events (enqueued, started, succeeded, …) for
#: `qrun events`. Off unless a queue asks (``Queue(..., events=True)``): two events per job
#: cost about as much server CPU as the job's own commands (docs/operations.md has figures).
DEFAULT_EVENTS = False

#: Longest pause between two claimer passes over a queue's pending entries (shorter when
#: the visibility timeout is short: a quarter of it).
CLAIM_INTERVAL_S = 1.0

#: Pending entries the claimer looks at per script call.
CLAIM_BATCH_SIZE = 200

#: A consumer with nothing pending that has not read for this long belonged to a worker
#: that is gone (its supervisor died without cleaning up); the maintenance thread removes it.
FORGET_CONSUMER_AFTER_S = 3_600.0

#: Most entries of one live worker the visibility extension refreshes per pass (a worker
#: holds at most its prefetch, 512, plus the acks waiting for its next read).
EXTEND_BATCH_SIZE = 2_000

#: How often the maintenance thread asks the server for its run id, to notice a restart
#: (and a restart that lost the queues' data).
SERVER_CHECK_INTERVAL_S = 1.0

#: How often supervisors and workers look at their queues' settings records in the server
#: (``qrun queue update``): one pipelined HGET per process per this long.
SETTINGS_CHECK_INTERVAL_S = 2.0
#: How often dead-letter retention trims the dead streams (and stale consumers are removed).
TRIM_INTERVAL_S = 60.0

#: How often the supervisor's maintenance thread runs (delayed promotion, idle checks).
MAINTENANCE_INTERVAL_S = 0.1

#: Due delayed jobs moved to the stream per script call.
PROMOTE_BATCH_SIZE = 1_000

#: Dead letters read, requeued (one requeue.lua call) or deleted per batch by the dead-letter
#: operations; a batch of 500 requeues holds the server for a few milliseconds.
DEAD_BATCH_SIZE = 500

#: How long workers get to finish their current job after TERM/INT before they are killed.
DEFAULT_GRACE_PERIOD_S = 30.0

#: A worker with no job running that has not polled the server for this long is hung
#: (deadlocked, stuck after a reconnect) and is replaced. Its read blocks READ_BLOCK_MS,
#: and a reconnecting worker keeps polling, so a live worker never comes near it.
HUNG_WORKER_S = 60.0

#: How often a worker checks its RSS against --max-memory-per-worker (psutil costs ~20 µs).
MEMORY_CHECK_INTERVAL_S = 1.0

#: --max-jobs-per-worker and --max-memory-per-worker get up to this fraction of random
#: headroom per worker, so a fleet does not recycle in lockstep.
RECYCLE_JITTER = 0.1

#: Reconnect backoff of a worker that lost the server: first pause, and the cap.
RECONNECT_BASE_S = 0.1
RECONNECT_CAP_S = 5.0

#: Presence heartbeat period; a supervisor missing three of them is gone from `qrun workers`.
PRESENCE_INTERVAL_S = 2.0

#: Exit status of a worker that could not boot (import error, no server): halts the supervisor.
EXIT_BOOT_FAILED = 3
