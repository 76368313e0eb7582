"""A small HTTP server on 127.0.0.1 for tests, with fault modes.

Usage::

  with http_server.serve({"/m.tar.gz": archive_bytes}) as server:
    url = server.url("/m.tar.gz")
    server.set("/broken.tar.gz", data, fault="reset")
    ...
    assert server.count("/m.tar.gz") == 1

Each route is a :class:`Route`: the body plus an optional fault that applies
to every request, or only to the first ``times`` requests (later requests are
served normally), which is how retries are tested. Faults:

- ``"status"``: answer with ``status`` (e.g. 404, 500) and a short body;
- ``"reset"``: send the headers and half of the body, then reset the
  connection (TCP RST);
- ``"truncate"``: send only the first ``keep`` bytes (default: half) with a
  Content-Length that matches them, so the transfer looks complete but the
  gzip stream is cut;
- ``"slow"``: wait ``delay`` seconds before answering;
- ``"stall"``: send the headers and ``keep`` bytes, then wait ``delay``
  seconds (``server.stalled`` is set once the bytes are out);
- ``"redirect"``: answer 302 to ``location`` (a path on this server; a route
  redirecting to itself is a redirect loop).

The query string is ignored for routing and kept in ``server.requests``.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import http.server
import socket
import struct
import threading
import time
import urllib.parse
from typing import Dict, Iterator, List, Mapping, Optional, Union


@dataclasses.dataclass
class Route:
  body: bytes = b""
  fault: Optional[str] = None
  status: int = 500
  times: Optional[int] = None
  keep: Optional[int] = None
  delay: float = 0.0
  location: str = ""
  content_type: str = "application/x-gzip"


class _Handler(http.server.BaseHTTPRequestHandler):
  protocol_version = "HTTP/1.1"

  def log_message(self, *args):  # Keep test output clean.
    pass

  def do_GET(self):  # pylint: disable=invalid-name
    server: "_Server" = self.server  # type: ignore[assignment]
    path, _, query = self.path.partition("?")
    with server.lock:
      server.requests.append(self.path)
      server.counts[path] += 1
      number = server.counts[path]
      route = server.routes.get(path)
    if route is None:
      self._plain(404, b"no such route")
      return
    fault = route.fault
    if fault is not None and route.times is not None and number > route.times:
      fault = None
    try:
      self._serve(route, fault, server)
    except (BrokenPipeError, ConnectionResetError):
      pass

  def _plain(self, status: int, body: bytes,
             headers: Optional[Mapping[str, str]] = None) -> None:
    self.send_response(status)
    self.send_header("Content-Type", "text/plain")
    self.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
      self.send_header(key, value)
    self.end_headers()
    self.wfile.write(body)

  def _headers(self, route: Route, length: int) -> None:
    self.send_response(200)
    self.send_header("Content-Type", route.content_type)
    self.send_header("Content-Length", str(length))
    self.end_headers()

  def _serve(self, route: Route, fault: Optional[str], server) -> None:
    body = route.body
    if fault is None:
      self._headers(route, len(body))
      self.wfile.write(body)
    elif fault == "status":
      self._plain(route.status, f"fault {route.status}".encode())
    elif fault == "redirect":
      self._plain(302, b"moved", {"Location": route.location})
    elif fault == "slow":
      time.sleep(route.delay)
      self._headers(route, len(body))
      self.wfile.write(body)
    elif fault == "truncate":
      keep = len(body) // 2 if route.keep is None else route.keep
      self._headers(route, keep)
      self.wfile.write(body[:keep])
    elif fault == "reset":
      keep = len(body) // 2 if route.keep is None else route.keep
      self._headers(route, len(body))
      self.wfile.write(body[:keep])
      self.wfile.flush()
      time.sleep(0.2)  # Let the client read the headers and the first bytes.
      # SO_LINGER with a zero timeout makes close() send a TCP RST.
      self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
      self.connection.close()
      self.close_connection = True
    elif fault == "stall":
      keep = len(body) // 2 if route.keep is None else route.keep
      self._headers(route, len(body))
      self.wfile.write(body[:keep])
      self.wfile.flush()
      server.stalled.set()
      time.sleep(route.delay)
      self.close_connection = True
    else:
      raise ValueError(f"unknown fault {fault!r}")


class _Server(http.server.ThreadingHTTPServer):
  daemon_threads = True
  allow_reuse_address = True

  def __init__(self):
    super().__init__(("127.0.0.1", 0), _Handler)
    self.lock = threading.Lock()
    self.routes: Dict[str, Route] = {}
    self.counts: Dict[str, int] = collections.Counter()
    self.requests: List[str] = []
    self.stalled = threading.Event()

  def handle_error(self, request, client_address):  # Faults are expected.
    pass


class TestServer:
  """Handle on a running server (see module docstring)."""

  __test__ = False  # Not a pytest test class.

  def __init__(self, server: _Server):
    self._server = server

  @property
  def base(self) -> str:
    host, port = self._server.server_address[:2]
    return f"http://{host}:{port}"

  def url(self, path: str) -> str:
    return self.base + path

  def set(self, path: str, body: bytes = b"", **route) -> str:
    """Adds or replaces a route; returns its URL."""
    with self._server.lock:
      self._server.routes[path] = Route(body=body, **route)
    return self.url(path)

  def count(self, path: str) -> int:
    """Requests so far for a path (any query)."""
    with self._server.lock:
      return self._server.counts[path]

  @property
  def requests(self) -> List[str]:
    with self._server.lock:
      return list(self._server.requests)

  @property
  def stalled(self) -> threading.Event:
    return self._server.stalled

  def reset_counts(self) -> None:
    with self._server.lock:
      self._server.counts.clear()
      self._server.requests.clear()
      self._server.stalled.clear()


@contextlib.contextmanager
def serve(routes: Optional[Mapping[str, Union[bytes, Route]]] = None
          ) -> Iterator[TestServer]:
  """Runs a server on 127.0.0.1 (a free port) for the ``with`` block."""
  server = _Server()
  for path, value in (routes or {}).items():
    server.routes[path] = value if isinstance(value, Route) else Route(value)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield TestServer(server)
  finally:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def parse_query(request_path: str) -> Dict[str, List[str]]:
  """The query of a recorded request path, parsed."""
  return urllib.parse.parse_qs(urllib.parse.urlsplit(request_path).query)
