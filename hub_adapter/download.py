"""HTTP(S) downloads with timeouts, bounded retries and clear errors.

:func:`download` streams one URL into a local file. Transient faults (HTTP
5xx/408/429, connection resets, bodies shorter than their Content-Length,
timeouts) are retried with exponential backoff; permanent ones (4xx, redirect
loops, unknown hosts, TLS failures) fail at once. Either way the user gets a
:class:`~hub_adapter.errors.HandleError` naming the URL and the cause.

Settings (arguments win over environment variables):

- ``HUB_ADAPTER_HTTP_TIMEOUT``: seconds a connect or a read may block
  (default 60);
- ``HUB_ADAPTER_HTTP_RETRIES``: retries after the first attempt (default 4);
- ``HUB_ADAPTER_HTTP_BACKOFF``: the first wait in seconds, doubled after each
  retry and capped at 30 (default 1).

Progress (:class:`ProgressBar`) is a ``tqdm`` bar when the stream is a
terminal; otherwise (logs, CI, pipes) a few plain lines formatted by tqdm,
since a bar redrawn with carriage returns garbles a log file. Downloads are
logged with ``absl.logging`` at INFO, retries at WARNING.

What is still written here rather than taken from a library: the retry loop
and the sorting of faults into transient and permanent ones. ``urllib3``'s
``Retry`` or ``requests`` would add a dependency (and a second TLS stack
beside the ``ssl`` context tensorflow_hub configures) for a loop of a few
lines, and would not name the cause of each fault as the messages here do.
"""
from __future__ import annotations

import http.client
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Callable, Optional, TextIO, Union

from absl import logging
import tqdm

from hub_adapter import errors

TIMEOUT_ENV = "HUB_ADAPTER_HTTP_TIMEOUT"
RETRIES_ENV = "HUB_ADAPTER_HTTP_RETRIES"
BACKOFF_ENV = "HUB_ADAPTER_HTTP_BACKOFF"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 1.0
MAX_BACKOFF = 30.0
USER_AGENT = "hub_adapter/0.1 (+tensorflow_hub compatible)"

_CHUNK = 1 << 16

Progress = Callable[[int, Optional[int]], None]

PLAIN_INTERVAL = 0.5
"""Seconds between plain progress lines (when no terminal is attached)."""


def _isatty(stream) -> bool:
  try:
    return bool(stream.isatty())
  except (AttributeError, ValueError, OSError):
    return False


def _terminal_size(stream) -> tuple:
  try:
    return tuple(os.get_terminal_size(stream.fileno()))
  except (AttributeError, ValueError, OSError):
    return (0, 0)


class ProgressBar:
  """Download progress of one URL, as a :data:`Progress` callback.

  On a terminal it draws a ``tqdm`` bar (bytes, rate, time left). On anything
  else it writes a plain line, formatted by tqdm, at most every
  :data:`PLAIN_INTERVAL` seconds when the percentage moved, and one when the
  download completes. A retry that starts again from byte 0 restarts the
  bar. Call :meth:`close` (or use it as a context manager) at the end.

  Args:
    url: The URL, shown before the progress.
    stream: Where to write (default: ``sys.stderr`` at the time of the call).
  """

  def __init__(self, url: str, stream: Optional[TextIO] = None):
    self._desc = f"Downloading {url}"
    self._stream = stream if stream is not None else sys.stderr
    self.is_bar = _isatty(self._stream)
    self._bar: Optional[tqdm.tqdm] = None
    self._start = time.monotonic()
    self._last = -PLAIN_INTERVAL
    self._last_pct = -1

  def __call__(self, done: int, total: Optional[int]) -> None:
    if self.is_bar:
      if self._bar is None or done < self._bar.n:
        if self._bar is not None:
          self._bar.close()
        # A terminal that reports no size (a fresh pty) would get no bar.
        sized = min(_terminal_size(self._stream)) > 0
        self._bar = tqdm.tqdm(
            total=total, desc=self._desc, unit="B", unit_scale=True,
            unit_divisor=1024, file=self._stream, dynamic_ncols=sized,
            ncols=None if sized else 80, nrows=None if sized else 24,
            leave=True, mininterval=0.1)
      self._bar.update(done - self._bar.n)
      return
    now = time.monotonic()
    finished = total is not None and done >= total
    if not finished and now - self._last < PLAIN_INTERVAL:
      return
    if total:
      pct = int(100 * done / total)
      if pct == self._last_pct and not finished:
        return
      self._last_pct = pct
    self._last = now
    self._stream.write(tqdm.tqdm.format_meter(
        done, total, now - self._start, prefix=self._desc, unit="B",
        unit_scale=True, unit_divisor=1024, ascii=True) + "\n")
    self._stream.flush()

  def close(self) -> None:
    """Ends the bar (a no-op for plain lines)."""
    if self._bar is not None:
      self._bar.close()
      self._bar = None

  def __enter__(self) -> "ProgressBar":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


class _Transient(Exception):
  """A fault worth retrying; carries the cause text."""


class _Permanent(Exception):
  """A fault retrying cannot fix; carries the cause text."""


def _env_number(name: str, default: float, cast=float):
  raw = os.environ.get(name, "").strip()
  if not raw:
    return default
  try:
    value = cast(raw)
  except ValueError:
    value = -1
  if value < 0:
    raise errors.HandleError(errors.compose(
        f"Environment variable {name}={raw!r} is not a non-negative number.",
        "It configures HTTP downloads.",
        f"Set it to a number, or unset it (default {default})."),
        variable=name)
  return value


def settings(timeout: Optional[float] = None, retries: Optional[int] = None,
             backoff: Optional[float] = None) -> tuple:
  """The (timeout, retries, backoff) in force: arguments, env, defaults."""
  return (
      timeout if timeout is not None else _env_number(TIMEOUT_ENV,
                                                      DEFAULT_TIMEOUT),
      retries if retries is not None else _env_number(RETRIES_ENV,
                                                      DEFAULT_RETRIES, int),
      backoff if backoff is not None else _env_number(BACKOFF_ENV,
                                                      DEFAULT_BACKOFF))


def _describe_os_error(e: BaseException) -> str:
  if isinstance(e, (socket.timeout, TimeoutError)):
    return "timed out"
  if isinstance(e, ConnectionResetError):
    return "connection reset by the server"
  if isinstance(e, ConnectionRefusedError):
    return "connection refused"
  return f"{type(e).__name__}: {e}"


def _classify_url_error(e: urllib.error.URLError) -> Exception:
  if isinstance(e, urllib.error.HTTPError):
    e.close()
    if 300 <= e.code < 400:
      loop = "infinite loop" in str(e.reason)
      return _Permanent(f"HTTP {e.code} redirect " + (
          "loop (the server keeps redirecting to where it came from)" if loop
          else "chain too long (more than 10 redirects)"))
    if e.code >= 500 or e.code in (408, 429):
      return _Transient(f"HTTP {e.code} {e.reason}")
    return _Permanent(f"HTTP {e.code} {e.reason}")
  reason = e.reason
  if isinstance(reason, socket.gaierror):
    return _Permanent(f"the host name cannot be resolved ({reason})")
  if isinstance(reason, ssl.SSLError):
    return _Permanent(f"TLS failure ({reason})")
  if isinstance(reason, OSError):
    return _Transient(_describe_os_error(reason))
  return _Permanent(f"{reason}")


def _attempt(url: str, dest: str, timeout: float,
             progress: Optional[Progress],
             context: Optional[ssl.SSLContext]) -> int:
  """One GET into ``dest``. Local write errors escape as plain OSError."""
  request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
  try:
    kwargs = {"timeout": timeout}
    if context is not None and url.lower().startswith("https:"):
      kwargs["context"] = context
    response = urllib.request.urlopen(request, **kwargs)
  except urllib.error.URLError as e:
    raise _classify_url_error(e) from e
  except (http.client.HTTPException, OSError) as e:
    raise _Transient(_describe_os_error(e)) from e
  with response:
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    done = 0
    with open(dest, "wb") as out:
      while True:
        try:
          # read1: whatever has arrived, so progress and faults count bytes.
          chunk = response.read1(_CHUNK)
        except http.client.IncompleteRead as e:
          raise _Transient(f"the connection closed after {done + len(e.partial)}"
                           f" of {total} bytes") from e
        except (http.client.HTTPException, OSError) as e:
          raise _Transient(f"{_describe_os_error(e)} ({done} bytes received)"
                           ) from e
        if not chunk:
          break
        out.write(chunk)  # ENOSPC and friends propagate as OSError.
        done += len(chunk)
        if progress is not None:
          progress(done, total)
  if total is not None and done < total:
    raise _Transient(f"the connection closed after {done} of {total} bytes")
  return done


def download(url: str, dest: str, *, handle: Optional[str] = None,
             timeout: Optional[float] = None, retries: Optional[int] = None,
             backoff: Optional[float] = None,
             progress: Union[Progress, bool, None] = None,
             context: Optional[ssl.SSLContext] = None) -> int:
  """Downloads ``url`` into the file ``dest`` (overwritten).

  Args:
    url: The http(s) URL.
    dest: The local file to write.
    handle: The handle asked for (quoted in errors when it differs from url).
    timeout: Seconds a connect or read may block (env
      ``HUB_ADAPTER_HTTP_TIMEOUT``, default 60).
    retries: Retries after the first attempt for transient faults (env
      ``HUB_ADAPTER_HTTP_RETRIES``, default 4).
    backoff: First wait between attempts in seconds, doubling, capped at 30
      (env ``HUB_ADAPTER_HTTP_BACKOFF``, default 1).
    progress: Called with (bytes so far, total or None) as data arrives;
      True shows a :class:`ProgressBar` on stderr.
    context: The SSL context for https (tensorflow_hub's, so that
      ``TFHUB_DISABLE_CERT_VALIDATION`` is honoured).

  Returns:
    The number of bytes written.

  Raises:
    HandleError: the URL cannot be fetched (after retries for transient
      faults); the message names the URL, the cause and the attempts.
    OSError: writing ``dest`` failed (e.g. the disk is full).
  """
  timeout, retries, backoff = settings(timeout, retries, backoff)
  if progress is True:
    with ProgressBar(url) as bar:
      return download(url, dest, handle=handle, timeout=timeout,
                      retries=retries, backoff=backoff, progress=bar,
                      context=context)
  progress = progress or None
  logging.info("hub_adapter: downloading %s", url)
  attempts = 0
  while True:
    attempts += 1
    try:
      size = _attempt(url, dest, timeout, progress, context)
      logging.info("hub_adapter: downloaded %s (%d bytes)", url, size)
      return size
    except _Permanent as e:
      cause, transient = str(e), False
    except _Transient as e:
      cause, transient = str(e), True
    if transient and attempts <= retries:
      wait = min(backoff * 2 ** (attempts - 1), MAX_BACKOFF)
      logging.warning("hub_adapter: downloading %s: %s; retrying in %g s "
                      "(attempt %d of %d).", url, cause, wait, attempts + 1,
                      retries + 1)
      time.sleep(wait)
      continue
    with_timeout = (f" after {timeout:g} s (set {TIMEOUT_ENV} to change)"
                    if cause == "timed out" else "")
    tries = (f"; gave up after {attempts} attempts" if attempts > 1 else "")
    fix = ("The server had a transient fault each time; try again later, or "
           f"raise {RETRIES_ENV}/{TIMEOUT_ENV}." if transient else
           "Check the URL (open it in a browser), or download the archive "
           "yourself and pass its local path.")
    raise errors.HandleError(
        errors.compose(
            f"Cannot download {url}: {cause}{with_timeout}{tries}.",
            "The model archive could not be fetched, so nothing was cached.",
            fix, {"handle": handle if handle != url else None, "url": url}),
        handle=handle, url=url, cause=cause, attempts=attempts,
        transient=transient)


__all__ = ["download", "settings", "ProgressBar", "TIMEOUT_ENV",
           "RETRIES_ENV", "BACKOFF_ENV"]
