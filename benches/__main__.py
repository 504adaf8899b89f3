"""Run the bench suite: ``python -m benches [--quick] [--only SCENARIO ...] [--systems ...]``.

Starts its own valkey-server on loopback, runs every scenario against qrun, the raw Redis
limit and whichever peers are installed (``pip install -r benches/requirements.txt``),
and prints one table of medians with min–max over the repetitions and ratios to qrun.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Callable

import redis

from qrun.embedded import EmbeddedValkey

from . import scenarios
from .harness import Figure, fmt, python_and_machine
from .systems.base import System

PEERS = {"rq": "RQ", "dramatiq": "Dramatiq", "celery": "Celery", "huey": "Huey"}
SCENARIOS: dict[str, Callable[[str, list[System], scenarios.Plan], list[Figure]]] = {
    "enqueue": scenarios.enqueue_one,
    "bulk": scenarios.enqueue_bulk,
    "e2e": scenarios.end_to_end,
    "latency": scenarios.latency_and_memory,
    "results": scenarios.results,
    "codec": scenarios.codec,
}
LOWER_IS_BETTER = {"µs", "ms", "MiB", "µs/job"}


def load_systems(url: str, names: list[str]) -> tuple[list[System], list[str]]:
    from .systems.qrun import Qrun

    systems: list[System] = [Qrun(url)] if "qrun" in names else []
    missing = []
    for module_name, class_name in PEERS.items():
        if module_name not in names:
            continue
        try:
            module = importlib.import_module(f"benches.systems.{module_name}")
            systems.append(getattr(module, class_name)(url))
        except ImportError as error:
            missing.append(f"{module_name} ({error.name or error})")
    return systems, missing


def table(figures: list[Figure]) -> str:
    """Markdown: one row per scenario × system; the ratio says how many times qrun is better."""
    lines = [
        "| scenario | system | median | min–max | unit | qrun advantage |",
        "|---|---|---:|---:|---|---:|",
    ]
    by_scenario: dict[str, list[Figure]] = {}
    for figure in figures:
        by_scenario.setdefault(figure.scenario, []).append(figure)
    for scenario, rows in by_scenario.items():
        # qrun's own row (not a variant such as "qrun, results on") is the reference when present
        ours = next((f for f in rows if f.system == "qrun"), None) or next((f for f in rows if f.system.startswith("qrun")), None)
        for figure in rows:
            ratio = ""
            if ours is not None and figure is not ours and figure.median and ours.median:
                value = figure.median / ours.median if figure.unit in LOWER_IS_BETTER else ours.median / figure.median
                ratio = f"{value:.2f}×"
            system = f"{figure.system} ({figure.note})" if figure.note else figure.system
            lines.append(f"| {scenario} | {system} | {fmt(figure.median)} | {figure.spread()} | {figure.unit} | {ratio} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benches", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition, small sizes (a smoke run, not figures to quote)")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per figure (default 3; 1 with --quick)")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS), metavar="SCENARIO")
    parser.add_argument("--systems", nargs="+", default=["qrun", *PEERS], metavar="SYSTEM")
    parser.add_argument("--url", default=None, help="benchmark an existing server instead of starting one (it is FLUSHALLed)")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    plan = scenarios.Plan()
    if options.quick:
        plan = scenarios.Plan(
            repeat=1, single_calls=1_000, bulk_jobs=20_000, e2e=((2, 20_000),), peer_e2e_jobs=300, probes=50, result_probes=50
        )
    if options.repeat:
        plan = scenarios.Plan(**{**plan.__dict__, "repeat": options.repeat})

    server = None if options.url else EmbeddedValkey().start()
    url = options.url or server.url  # type: ignore[union-attr]
    try:
        systems, missing = load_systems(url, options.systems)
        info = redis.Redis.from_url(url).info("server")
        print(f"# qrun bench, {time.strftime('%Y-%m-%d %H:%M')}")
        print(f"{python_and_machine()}; server: {info.get('server_name', 'redis')} {info.get('valkey_version') or info['redis_version']} on loopback")
        print("systems: " + ", ".join(f"{s.name} {s.version()}" for s in systems))
        if missing:
            print("not installed (pip install -r benches/requirements.txt): " + ", ".join(missing))
        print(f"repetitions: {plan.repeat}; figures are medians\n", flush=True)
        figures: list[Figure] = []
        for name in options.only:
            started = time.monotonic()
            figures += SCENARIOS[name](url, systems, plan)
            print(f"... {name} done in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
        print(table(figures))
        for system in systems:
            system.close()
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
