"""The maintenance thread's order of work: extension before the claimer, and no claiming
on extensions that may have grown old (a stalled tick, an outage). No server: the recovery
functions are replaced by recorders."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.exceptions import ConnectionError

from qrun import maintenance, recovery
from qrun.keys import QueueKeys
from qrun.maintenance import LiveWorker, Maintenance


@dataclass
class FakeQueue:
    name: str = "q"
    visibility_timeout_s: float = 1.0
    keys: QueueKeys = field(default_factory=lambda: QueueKeys("qrun", "q"))
    promote_s: float = 0.0
    down: bool = False

    def promote_due(self) -> int:
        if self.down:
            raise ConnectionError("server gone")
        time.sleep(self.promote_s)
        return 0

    def is_idle(self) -> bool:
        return False


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []

    def extend(queue: Any, consumers: list[str]) -> int:
        seen.append("extend")
        return 0

    def reclaim(queue: Any, **options: Any) -> recovery.Reclaimed:
        seen.append("claim" if not options.get("consumer") else "sweep")
        return recovery.Reclaimed()

    monkeypatch.setattr(Maintenance, "check_server", lambda self: None)  # no server here
    monkeypatch.setattr(maintenance.recovery, "extend_visibility", extend)
    monkeypatch.setattr(maintenance.recovery, "reclaim", reclaim)
    monkeypatch.setattr(maintenance.recovery, "trim_dead", lambda queue: 0)
    monkeypatch.setattr(maintenance.recovery, "forget_idle_consumers", lambda queue: 0)
    monkeypatch.setattr(maintenance.recovery, "trim_cancel_marks", lambda queue: 0)
    monkeypatch.setattr(maintenance.SettingsWatcher, "check", lambda self, now=None: False)
    return seen


def _maintenance(queue: FakeQueue) -> Maintenance:
    worker = LiveWorker([queue], "w1")  # type: ignore[list-item]
    return Maintenance([queue], live_workers=lambda: [worker])  # type: ignore[list-item]


def test_a_tick_extends_live_workers_before_the_claimer_runs(calls: list[str]) -> None:
    _maintenance(FakeQueue()).tick()
    assert calls == ["extend", "claim"]


def test_a_tick_slowed_down_by_the_server_does_not_claim_and_the_next_extends_first(calls: list[str]) -> None:
    queue = FakeQueue(promote_s=0.3)  # longer than a quarter of the 1 s visibility timeout
    chores = _maintenance(queue)
    chores.tick()
    assert calls == ["extend"]
    queue.promote_s = 0.0
    chores.tick()  # extension is due again at once; the claimer waits one more period
    assert calls == ["extend", "extend"]
    time.sleep(0.26)
    chores.tick()
    assert calls[-1] == "claim" and calls.count("claim") == 1


def test_after_an_outage_extension_comes_first_and_the_claimer_waits(calls: list[str]) -> None:
    queue = FakeQueue(down=True)
    chores = _maintenance(queue)
    with pytest.raises(ConnectionError):
        chores.tick()
    chores._after_outage()  # what the thread's loop does when a tick fails  # noqa: SLF001
    queue.down = False
    chores.tick()
    assert calls == ["extend", "extend"]  # the claimer held back
    time.sleep(0.26)
    chores.tick()
    assert calls[-1] == "claim"
