"""An HTTP front of moto's server that throttles as AWS does under load: the first time it sees a request, it
answers it as S3 answers with 503 SlowDown, or as Glue answers with ThrottlingException, when it is the first
of its kind (the client library, by its User-Agent, and the HTTP method or Glue operation) or one in `every`
of the rest; the client's retry of that request is forwarded. Counts what it throttled, by service and by
client library."""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
GLUE_THROTTLED = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def client_library(user_agent: str) -> str:
    """The library a User-Agent names: `aws-sdk-java/2.20.18 Linux/…` -> `aws-sdk-java/2`, `Boto3/1.34 …` -> `Boto3`;
    S3A's SDK names Hadoop first."""
    if user_agent.startswith("Hadoop"):
        return "Hadoop S3A"
    product = user_agent.split(" ", 1)[0]
    name, _, version = product.partition("/")
    return f"{name}/{version.split('.')[0]}" if name == "aws-sdk-java" else name


class ThrottlingProxy:
    def __init__(self, upstream: str, every: int) -> None:
        self.upstream = urlparse(upstream)
        self.every, self.seen, self.kinds, self.throttled = every, set(), set(), Counter()
        self.clients: Counter[str] = Counter()  # throttled requests by client library
        self.forwarded = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return b"".join(parts)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                target = self.headers.get("X-Amz-Target", "")
                service = "glue" if target.startswith("AWSGlue.") else "s3"
                client = client_library(self.headers.get("User-Agent", ""))
                if proxy._throttle(self.command, self.path, target, body, client):
                    with proxy.lock:
                        proxy.throttled[service] += 1
                        proxy.clients[client] += 1
                    status, payload, kind = (
                        (400, GLUE_THROTTLED, "application/x-amz-json-1.1")
                        if service == "glue"
                        else (503, SLOW_DOWN, "application/xml")
                    )
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    if service == "glue":
                        self.send_header("x-amzn-ErrorType", "ThrottlingException")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    payload = answer.read()
                    self.send_response(answer.status, answer.reason)
                    for key, value in answer.getheaders():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    length = answer.getheader("Content-Length") if self.command == "HEAD" else str(len(payload))
                    self.send_header("Content-Length", length or "0")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                finally:
                    connection.close()
                with proxy.lock:
                    proxy.forwarded += 1

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _throttle(self, method: str, path: str, target: str, body: bytes, client: str) -> bool:
        request = (method, path, target, hash(body))
        kind = (client, target or method)
        with self.lock:
            if request in self.seen:
                return False
            self.seen.add(request)
            if kind not in self.kinds:
                self.kinds.add(kind)
                return True
            return len(self.seen) % self.every == 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
