"""A TCP front of the test's PostgreSQL, to make the network fail where a test says: it hangs up on its first
`refuse` connections (a server restarting), and shows every message a client sends to `watch` before forwarding
it, which may stop the connection there (a client killed in the middle of a statement)."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable
from urllib.parse import parse_qs, urlparse

from servers import free_port

# (connection number, the bytes a client sent) -> False to hang up instead of forwarding them
Watch = Callable[[int, bytes], bool]


class PostgresProxy:
    def __init__(self, postgres_url: str, refuse: int = 0, watch: Watch | None = None) -> None:
        self.url, self.refuse, self.refused, self.watch = urlparse(postgres_url), refuse, 0, watch
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.listener.getsockname()[1]
        self.numbers = itertools.count()
        threading.Thread(target=self._serve, daemon=True).start()

    def front_url(self) -> str:
        user = self.url.username or "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}{self.url.path or '/postgres'}"

    def _upstream(self) -> socket.socket:
        socket_folder = parse_qs(self.url.query).get("host", [None])[0]
        if socket_folder:  # the embedded server listens on a Unix socket
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(f"{socket_folder}/.s.PGSQL.{self.url.port or 5432}")
            return upstream
        return socket.create_connection((self.url.hostname, self.url.port or 5432))

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refused < self.refuse:
                self.refused += 1
                client.close()  # as a server going down for a restart does
                continue
            upstream, number = self._upstream(), next(self.numbers)
            threading.Thread(target=self._pipe, args=(client, upstream, number), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, number: int | None) -> None:
        try:
            while data := source.recv(65536):
                if number is not None and self.watch is not None and not self.watch(number, data):
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
