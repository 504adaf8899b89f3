"""The supervisor's maintenance thread: the periodic work no single worker owns.

Each tick (every MAINTENANCE_INTERVAL_S) it runs what the supervisor asked for (settling a
job whose worker it killed), promotes due delayed jobs and notes whether every queue has
settled (``--burst``). Less often it runs the claimer (redeliver or dead-letter the jobs of
dead workers), extends the visibility of live workers' jobs, trims old dead letters, removes
consumers of workers that are gone and beats presence. It runs in the supervisor, never in
workers; forked workers never reuse its sockets because each queue's client is rebuilt in a
new process.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import RedisError, ResponseError

from . import recovery, settings
from .connection import redact
from .events import EventBatch
from .hooks import Outbox, hooks_for
from .lifecycle import records as lifecycle_records
from .queue import Queue
from .queue_settings import SettingsWatcher
from .settle import settle_cancelled_entry

if TYPE_CHECKING:
    from .metrics.counts import CountWriter

log = logging.getLogger(__name__)

#: How long a reaped worker's entries must have been idle before the claimer takes them
#: back: its last ack may still be in flight on its dead socket.
DEAD_WORKER_GRACE_MS = 1_000


@dataclass(frozen=True)
class LiveWorker:
    """A worker process that is alive now, and the queues it reads as ``consumer``."""

    queues: list[Queue]
    consumer: str


class Maintenance:
    """Runs :meth:`tick` every ``interval_s`` on a daemon thread until stopped."""

    def __init__(
        self,
        queues: Sequence[Queue],
        interval_s: float = settings.MAINTENANCE_INTERVAL_S,
        *,
        live_workers: Callable[[], list[LiveWorker]] = list,
        beat: Callable[[], None] | None = None,
        cancels: Callable[[dict[str, set[str]]], None] | None = None,
    ) -> None:
        self.queues = list(queues)
        self.interval_s = interval_s
        #: Set once a tick saw every queue with nothing ready, in flight or delayed.
        self.idle = threading.Event()
        self._live_workers = live_workers
        self._beat = beat
        #: told the entry ids marked cancelled per stream, each tick they are not all empty
        self._cancels = cancels
        self._had_cancel_marks = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._idle_before = False
        self._requests: list[Callable[[], None]] = []
        self._requests_lock = threading.Lock()
        #: consumer of each reaped worker -> (stream, entry id) of the job it was running
        #: (None: it was between jobs), until its entries are handed back
        self._dead_workers: dict[str, tuple[str, str] | None] = {}
        self._unextended: set[str] = set()  # streams whose last extension failed
        self._next_run: dict[str, float] = {}
        self._run_id: str | None = None  # the server's run id when last seen
        #: settings operators store in the server (qrun queue update), applied within seconds
        self.stored_settings = SettingsWatcher(self.queues, settings.SETTINGS_CHECK_INTERVAL_S)
        #: jobs the claimer took back, by (queue name, "redelivered" | "dead_lettered"), for metrics
        self.reclaimed: Counter[tuple[str, str]] = Counter()
        #: the supervisor's own region of the metrics table (None: metrics are off): jobs this
        #: thread settles (killed for a time limit, dead-lettered or cancelled by the claimer)
        self.counts: CountWriter | None = None

    # -- what the supervisor asks for ------------------------------------------------------

    @property
    def shortest_visibility_s(self) -> float:
        """The tightest visibility timeout served: it paces extension and the claimer."""
        return min(queue.visibility_timeout_s for queue in self.queues)

    def set_queues(self, queues: Sequence[Queue]) -> None:
        """Serve a new set of queues (after a reload)."""
        self.queues = list(queues)
        self.stored_settings.queues = self.queues

    def request(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the maintenance thread at the next tick, again later if the
        server is unreachable (so actions must be safe to repeat)."""
        with self._requests_lock:
            self._requests.append(action)

    def worker_died(self, consumer: str, running: tuple[str, str] | None = None) -> None:
        """Take back a reaped worker's pending entries now, not after the visibility timeout,
        then drop its consumer from the groups. ``running`` is the (stream, entry id) of the
        job it was running, from its slot: only that job is charged a delivery; the rest of
        its batch never started and goes back uncharged. Queued behind earlier requests, so a
        job the supervisor asked to settle (a hard-limit kill) is settled before it could be
        redelivered."""
        self.request(lambda: self._mark_dead(consumer, running))

    def _mark_dead(self, consumer: str, running: tuple[str, str] | None) -> None:
        with self._requests_lock:
            self._dead_workers[consumer] = running

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="qrun-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def tick(self) -> None:
        """One pass: extension when due (first: nothing live may look idle to the claimer),
        requests, promotion and the idle check every time, then the claimer when due."""
        started = time.monotonic()
        shortest_visibility_s = self.shortest_visibility_s
        if self._due("server", settings.SERVER_CHECK_INTERVAL_S):
            self.check_server()
        self.stored_settings.check()
        if self._due("extend", shortest_visibility_s / 4):
            self.extend_live_workers()
        self._run_requests()
        if self._cancels is not None:
            self.watch_cancels()
        self._promote_and_check_idle()
        if time.monotonic() - started > shortest_visibility_s / 4:
            self._after_outage()  # this tick stalled (a slow or frozen server): extend before claiming
        elif self._due("claim", min(settings.CLAIM_INTERVAL_S, shortest_visibility_s / 4)):
            self.reclaim(budget_s=shortest_visibility_s / 4)
        if self._due("trim", settings.TRIM_INTERVAL_S):
            self.trim()
        if self._beat is not None and self._due("beat", settings.PRESENCE_INTERVAL_S):
            self._beat()

    def check_server(self) -> None:
        """Notice a server that restarted (its run id changed). If it came back without the
        queues' consumer groups, it lost its data (no persistence): recreate them, saying so
        once, loudly (:func:`qrun.recovery.recreate_lost_groups`; a worker that met NOGROUP
        first does the same)."""
        if not self.queues:
            return
        run_id = self.queues[0].redis.info("server").get("run_id")
        previous, self._run_id = self._run_id, run_id
        if previous is None or previous == run_id:
            return
        why = f"it restarted: run id {previous[:8]} -> {str(run_id)[:8]}"
        if not recovery.recreate_lost_groups(self.queues, why):
            log.warning("the server at %s restarted (%s); its queues are still there", redact(self.queues[0].url), why)
        self._next_run["extend"] = 0.0  # the restarted server needs its extensions now

    def watch_cancels(self) -> None:
        """Read every queue's cancel marks (entries workers held when their job was
        cancelled; one pipelined round trip) and hand them to the supervisor, which tells its
        workers (qrun.lifecycle.cancel). Called once more after they emptied, so it forgets."""
        with self.queues[0].redis.pipeline(transaction=False) as pipe:
            for queue in self.queues:
                pipe.zrange(queue.keys.cancel_entries, 0, -1)
            replies = pipe.execute()
        marks = {
            queue.keys.stream: {part.decode() for part in reply}
            for queue, reply in zip(self.queues, replies) if reply
        }
        if marks or self._had_cancel_marks:
            assert self._cancels is not None
            self._cancels(marks)
        self._had_cancel_marks = bool(marks)

    def _due(self, name: str, every_s: float) -> bool:
        now = time.monotonic()
        if now < self._next_run.get(name, 0.0):
            return False
        self._next_run[name] = now + every_s
        return True

    def _run_requests(self) -> None:
        with self._requests_lock:
            todo, self._requests = self._requests, []
        for position, action in enumerate(todo):
            try:
                action()
            except ResponseError:  # a data or script error: repeating it would fail the same way
                log.exception("maintenance: a requested action failed; dropping it")
            except RedisError:
                self.request_all(todo[position:])  # the server is away: try again next tick
                raise

    def request_all(self, actions: list[Callable[[], None]]) -> None:
        with self._requests_lock:
            self._requests[:0] = actions

    def _promote_and_check_idle(self) -> None:
        """Idle means two passes in a row saw every queue empty: one pass reads the queues
        one after another, so a job moving between them could slip past a single look."""
        idle = True
        for queue in self.queues:
            try:
                queue.promote_due()
                idle = queue.is_idle() and idle
            except ResponseError as error:  # a script or data error, not an outage: other queues go on
                log.error("maintenance: queue %s: %s", queue.name, error)
                idle = False
        if idle and self._idle_before:
            self.idle.set()
        elif not idle:
            self.idle.clear()
        self._idle_before = idle

    # -- recovery --------------------------------------------------------------------------

    def reclaim(self, budget_s: float | None = None) -> None:
        """The claimer: jobs idle past the visibility timeout (never those of this
        supervisor's live workers), then the entries of workers this supervisor saw die
        (sooner: it knows they are dead)."""
        with self._requests_lock:
            dead_workers = sorted(self._dead_workers.items())
        alive = sorted({worker.consumer for worker in self._live_workers()})
        for queue in self.queues:
            if queue.keys.stream in self._unextended:
                continue
            done = recovery.reclaim(queue, alive=alive, max_seconds=budget_s)
            self._log_reclaimed(queue, done, "idle past the visibility timeout")
        for consumer, running in dead_workers:
            forgotten = True
            for queue in self.queues:
                charged = running[1] if running is not None and running[0] == queue.keys.stream else ""
                done = recovery.reclaim(queue, min_idle_ms=DEAD_WORKER_GRACE_MS, consumer=consumer, charge_only=charged)
                self._log_reclaimed(queue, done, f"held by dead worker {consumer}")
                forgotten = recovery.forget_consumer(queue, consumer) and forgotten
            if forgotten:
                with self._requests_lock:
                    self._dead_workers.pop(consumer, None)

    def _log_reclaimed(self, queue: Queue, done: recovery.Reclaimed, why: str) -> None:
        self._count_reclaimed(queue, done)
        if done.redelivered:
            log.warning("queue %s: redelivered %d job(s) %s", queue.name, done.redelivered, why)
        for job_id, task, _attempt, reason in done.dead_jobs:
            log.error("queue %s: job %s (%s) %s dead-lettered: %s", queue.name, job_id, task, why, reason)
        if done.dead_jobs:
            lifecycle_records.record_reclaimed(queue, done.dead_jobs)
        if done.dead_jobs and queue.events:
            events = EventBatch(queue.prefix)
            for job_id, task, attempt, reason in done.dead_jobs:
                if job_id and task and attempt:
                    events.add("dead", queue.name, job_id, task, attempt, reason=reason)
            events.publish(queue.redis)
        if done.cancelled_jobs:
            cancel_events = EventBatch(queue.prefix) if queue.events else None
            outbox = Outbox()
            hooks = hooks_for(queue, cancel_events, outbox, counts=self.counts)
            settled = sum(settle_cancelled_entry(queue, entry_id, hooks) for entry_id, *_ in done.cancelled_jobs)
            outbox.send(queue.redis)
            if cancel_events is not None:
                cancel_events.publish(queue.redis)
            log.warning("queue %s: %d cancelled job(s) %s settled as cancelled, never to run", queue.name, settled, why)

    def _count_reclaimed(self, queue: Queue, done: recovery.Reclaimed) -> None:
        if done.redelivered:
            self.reclaimed[(queue.name, "redelivered")] += done.redelivered
        if done.dead_lettered:
            self.reclaimed[(queue.name, "dead_lettered")] += done.dead_lettered
        if self.counts is not None:
            from .metrics.counts import DEAD

            for _job_id, task, _attempt, _reason in done.dead_jobs:
                self.counts.add(queue, task, DEAD)

    def extend_live_workers(self) -> None:
        """Keep every entry live workers hold hidden from the claimer: the job each one runs,
        the finished ones whose acks wait for its next read, the fetched ones not started."""
        queues: dict[str, Queue] = {}
        consumers: dict[str, list[str]] = {}
        for worker in self._live_workers():
            for queue in worker.queues:
                queues[queue.keys.stream] = queue
                consumers.setdefault(queue.keys.stream, []).append(worker.consumer)
        failed = set()
        for stream, names in consumers.items():
            try:
                recovery.extend_visibility(queues[stream], names)
            except ResponseError as error:  # one queue's problem must not stop the others' extension
                log.error("maintenance: extending queue %s failed: %s", queues[stream].name, error)
                failed.add(stream)
        self._unextended = failed  # the claimer leaves these queues alone until extension works

    def trim(self) -> None:
        """Dead-letter retention, and consumers of workers gone for good."""
        for queue in self.queues:
            trimmed = recovery.trim_dead(queue)
            if trimmed:
                log.info("queue %s: trimmed %d dead letter(s) older than %.0fs", queue.name, trimmed, queue.dead_retention_s)
            recovery.forget_idle_consumers(queue)
            recovery.trim_cancel_marks(queue)

    def final_pass(self, workers_killed: bool) -> None:
        """Called once the thread stopped and every worker is reaped: settle what the
        supervisor asked for and hand the killed workers' jobs back, so a restart does not
        wait out the visibility timeout for them. Best effort: the claimer is the backstop."""
        try:
            if workers_killed:
                time.sleep(DEAD_WORKER_GRACE_MS / 1000)
            self._run_requests()
            self.reclaim()
        except RedisError as error:
            log.warning("could not hand back the stopped workers' jobs (%s); they are redelivered "
                        "after the visibility timeout", error)

    def _after_outage(self) -> None:
        """Back from an outage (or a stall): the live workers' entries have not been extended
        for a while. Extend them now and let the claimer wait one more extension period, so
        every supervisor gets to extend its own before anyone claims."""
        shortest_visibility_s = self.shortest_visibility_s
        self._next_run["extend"] = 0.0
        self._next_run["claim"] = time.monotonic() + shortest_visibility_s / 4

    def _loop(self) -> None:
        last_tick = time.monotonic()
        while not self._stop.wait(self.interval_s):
            shortest_visibility_s = self.shortest_visibility_s
            if time.monotonic() - last_tick > shortest_visibility_s / 4:
                self._after_outage()  # this thread stalled: same care as after an outage
            try:
                if self._failing:  # back from an outage: first, did the server lose its data?
                    self.check_server()
                self.tick()
                last_tick = time.monotonic()
                if self._failing:
                    log.warning("maintenance: server reachable again")
                    self._failing = False
            except ResponseError as error:  # the server answered: a data or script problem, not an outage
                last_tick = time.monotonic()
                log.error("maintenance: %s; continuing", error)
            except RedisError as error:
                if not self._failing:  # once per outage, not once per tick
                    log.warning("maintenance: server unreachable (%s); retrying", error)
                    self._failing = True
                self._after_outage()
            except Exception:  # never let the thread die silently
                log.exception("maintenance: unexpected error; continuing")
