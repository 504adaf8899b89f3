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

#: A batch whose jobs ran faster than this on average lets the next read fetch more.
FAST_JOB_S = 0.002

#: A worker fetches no more than about this much work at once, judged by its last batch, so
#: jobs it holds never wait long while another worker idles.
BATCH_WORK_S = 0.005

#: How often the supervisor's maintenance thread runs (delayed promotion, idle checks).
MAINTENANCE_INTERVAL_S = 0.1

#: Due delayed jobs moved to the stream per script call.
PROMOTE_BATCH_SIZE = 1_000

#: How long workers get to finish their current job after TERM/INT before they are killed.
DEFAULT_GRACE_PERIOD_S = 30.0

#: Exit status of a worker that could not boot (import error, no server): halts the supervisor.
EXIT_BOOT_FAILED = 3
