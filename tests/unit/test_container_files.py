"""The example Dockerfile and docker-compose.yml, checked without a Docker engine.

No image is built here (no engine, no registry): these tests read the files and check what a
build and `docker compose up` rely on: the stages, the non-root user, the stop signal, the
health check, the files the Dockerfile copies, and in compose: Valkey with AOF and
noeviction, a worker whose health check is `qrun health` and whose stop grace period covers
qrun's own, and a producer. The PID 1 behaviour itself is tested in
tests/integration/test_pid1.py (a new PID namespace, as a container has).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"stage {self.name or self.base} has no {instruction}"
        return found[-1]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages): comments dropped, continued lines joined, one
    (INSTRUCTION, arguments) per instruction, a new stage at each FROM."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # a comment inside a continued instruction does not end it
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"FROM {rest!r}"
            stages.append(Stage(words[0], name))
        elif not stages:
            assert instruction == "ARG", f"{instruction} before the first FROM"
            key, _, default = rest.partition("=")
            args[key] = default
        else:
            stages[-1].instructions.append((instruction, rest))
    return args, stages


def exec_form(args: str) -> list[str]:
    """An instruction's JSON (exec) form, e.g. ENTRYPOINT ["qrun"]; fails on the shell form."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(word, str) for word in value), args
    return value


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def test_the_dockerfile_builds_the_wheel_in_one_stage_and_runs_it_in_a_slim_one(dockerfile: Any) -> None:
    args, stages = dockerfile
    assert len(stages) == 2, [s.name for s in stages]
    build, runtime = stages
    assert build.name == "build"
    for stage in stages:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage.base)
        assert re.fullmatch(r"python:3\.\d+-slim", image), image  # the same Python in both

    build_steps = " ".join(build.all("RUN"))
    assert "sh.rustup.rs" in build_steps or "cargo" in build_steps  # a Rust toolchain for the codec
    assert "pip wheel" in build_steps and "--wheel-dir /wheels" in build_steps

    [install] = [run for run in runtime.all("RUN") if "pip install" in run]
    assert "from=build" in install and "--no-index" in install  # only the wheels built above
    assert not any("rustup" in run or "build-essential" in run for run in runtime.all("RUN"))


def test_the_dockerfile_copies_files_that_exist_and_are_not_dockerignored(dockerfile: Any) -> None:
    _args, stages = dockerfile
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    sources = []
    for stage in stages:
        for copy in stage.all("COPY"):
            words = [word for word in shlex.split(copy) if not word.startswith("--")]
            assert not copy.startswith("--from"), copy  # (no COPY --from: the wheels are mounted)
            sources += words[:-1]
    assert {"pyproject.toml", "Cargo.toml", "Cargo.lock", "README.md", "rust/", "python/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
        top = source.rstrip("/").split("/")[0]
        assert top not in ignored, f".dockerignore leaves out {source}"
    assert "**/*.so" in ignored  # a codec built in place by `maturin develop` stays out of the image


def test_the_runtime_stage_runs_qrun_as_a_user_that_is_not_root(dockerfile: Any) -> None:
    _args, stages = dockerfile
    runtime = stages[-1]
    user = runtime.last("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert any("useradd" in run and run.split()[-1] == user for run in runtime.all("RUN"))
    names = [name for name, _ in runtime.instructions]
    assert names.index("USER") > max(i for i, name in enumerate(names) if name in ("RUN", "COPY"))

    assert runtime.last("STOPSIGNAL") == "SIGTERM"  # qrun's graceful stop
    assert exec_form(runtime.last("ENTRYPOINT")) == ["qrun"]  # exec form: qrun itself is PID 1, no shell
    command = exec_form(runtime.last("CMD"))
    assert command[0] == "run" and "--grace-period" in command

    healthcheck = runtime.last("HEALTHCHECK")
    options, _, probe = healthcheck.partition("CMD ")
    assert exec_form(probe)[:2] == ["qrun", "health"], healthcheck
    assert "--start-period=" in options and "--timeout=" in options


def test_the_image_runs_the_example_app_and_checks_its_queue(dockerfile: Any) -> None:
    """The CMD's MODULE:QUEUE and the health check's --queue name what examples/plain declares."""
    _args, stages = dockerfile
    runtime = stages[-1]
    [copied] = [shlex.split(copy) for copy in runtime.all("COPY") if "examples/" in copy]
    app = ROOT / copied[0]
    module, attribute = exec_form(runtime.last("CMD"))[-1].split(":")
    spec = importlib.util.spec_from_file_location("container_example_tasks", app / f"{module}.py")
    assert spec is not None and spec.loader is not None
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)  # declares the queue; connects to nothing
    queue = getattr(tasks, attribute)
    probe = exec_form(runtime.last("HEALTHCHECK").partition("CMD ")[2])
    assert probe[probe.index("--queue") + 1] == queue.name
    queue.close()


# -- docker-compose.yml ------------------------------------------------------------------------


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", value)
    assert match and value, value
    return int(match.group(1) or 0) * 60 + float(match.group(2) or 0)


def test_compose_runs_valkey_with_aof_and_noeviction_a_healthy_worker_and_a_producer(dockerfile: Any) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    try:
        import yaml  # not a dependency of qrun: used when it is installed
    except ImportError:
        yaml = None
    if yaml is None:  # the same facts, read as text
        assert re.search(r"^  valkey:$", text, re.M) and re.search(r"^  worker:$", text, re.M)
        assert re.search(r"^  producer:$", text, re.M)
        assert re.search(r'"--appendonly",\s*"yes"', text)
        assert re.search(r'"--maxmemory-policy",\s*"noeviction"', text)
        assert re.search(r'test: \["CMD", "qrun", "health"', text)
        assert "stop_grace_period: 30s" in text and "produce.py" in text
        return

    services = yaml.safe_load(text)["services"]
    assert {"valkey", "worker", "producer"} <= set(services)
    command = services["valkey"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"

    worker = services["worker"]
    assert worker["build"] == "." and (ROOT / "Dockerfile").exists()
    assert worker["healthcheck"]["test"][:3] == ["CMD", "qrun", "health"]
    assert worker["environment"]["QRUN_URL"].startswith("redis://valkey:")
    assert worker["depends_on"]["valkey"]["condition"] == "service_healthy"
    # Docker SIGKILLs after stop_grace_period: qrun's --grace-period (the image's CMD) must fit in it.
    cmd = exec_form(dockerfile[1][-1].last("CMD"))
    assert float(cmd[cmd.index("--grace-period") + 1]) < _seconds(worker["stop_grace_period"])
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"

    producer = services["producer"]
    assert producer["image"] == worker["image"]
    assert producer["entrypoint"] == ["python", "produce.py"]
    assert (ROOT / "examples" / "plain" / "produce.py").exists()
