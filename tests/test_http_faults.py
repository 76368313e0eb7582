"""HTTP faults from a server on 127.0.0.1: each gives a HandleError naming
the URL and the cause, transient ones are retried with bounded backoff, and
no partial cache entry survives."""
import importlib
import os
import time

import pytest

from hub_adapter import download
from hub_adapter import errors

import http_server  # pylint: disable=wrong-import-order

resolve_lib = importlib.import_module("hub_adapter.handles")

RETRIES = 2


@pytest.fixture(scope="module")
def archive(shared_fixtures):
  with open(shared_fixtures.archive("half_plus_two_v1"), "rb") as f:
    return f.read()


@pytest.fixture
def server():
  with http_server.serve() as s:
    yield s


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
  folder = tmp_path / "cache"
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(folder))
  monkeypatch.setenv(download.TIMEOUT_ENV, "0.5")
  monkeypatch.setenv(download.BACKOFF_ENV, "0.01")
  monkeypatch.setenv(download.RETRIES_ENV, str(RETRIES))
  return folder


def _cache_is_empty(folder):
  return not folder.exists() or os.listdir(folder) == []


def _fails(url, error=errors.HandleError):
  with pytest.raises(error) as e:
    resolve_lib.resolve(url)
  message = str(e.value)
  assert url in message  # Names the handle/URL...
  return e.value, message


def test_404_is_permanent(server, cache_dir, archive):
  url = server.set("/m.tar.gz", archive, fault="status", status=404)
  error, message = _fails(url)
  assert "HTTP 404" in message and error.transient is False
  assert server.count("/m.tar.gz") == 1  # Not retried.
  assert _cache_is_empty(cache_dir)


def test_500_is_retried_then_reported(server, cache_dir, archive):
  url = server.set("/m.tar.gz", archive, fault="status", status=500)
  error, message = _fails(url)
  assert "HTTP 500" in message and f"after {RETRIES + 1} attempts" in message
  assert error.attempts == RETRIES + 1 and error.transient
  assert server.count("/m.tar.gz") == RETRIES + 1
  assert _cache_is_empty(cache_dir)


@pytest.mark.parametrize("fault,kwargs", [
    ("status", {"status": 503}), ("reset", {}), ("slow", {"delay": 1.0}),
])
def test_transient_faults_recover_on_retry(server, cache_dir, archive, fault,
                                           kwargs):
  url = server.set("/m.tar.gz", archive, fault=fault, times=RETRIES, **kwargs)
  folder = resolve_lib.resolve(url)
  assert os.path.isfile(os.path.join(folder, "saved_model.pb"))
  assert server.count("/m.tar.gz") == RETRIES + 1
  assert sorted(os.listdir(cache_dir)) == [
      os.path.basename(folder), os.path.basename(folder) + ".descriptor.txt"]


def test_connection_reset_mid_body(server, cache_dir, archive):
  url = server.set("/m.tar.gz", archive, fault="reset", keep=700)
  error, message = _fails(url)
  assert "connection reset by the server (700 bytes received)" in message
  assert error.transient and server.count("/m.tar.gz") == RETRIES + 1
  assert _cache_is_empty(cache_dir)


def test_truncated_gzip_stream(server, cache_dir, archive):
  url = server.set("/m.tar.gz", archive, fault="truncate")
  error, message = _fails(url, errors.ArchiveError)
  assert isinstance(error, errors.HandleError)
  assert "truncated or corrupt" in message
  assert error.url.startswith(url)
  assert _cache_is_empty(cache_dir)


def test_server_slower_than_the_timeout(server, cache_dir, archive):
  url = server.set("/m.tar.gz", archive, fault="slow", delay=3.0)
  start = time.monotonic()
  error, message = _fails(url)
  elapsed = time.monotonic() - start
  assert "timed out" in message and download.TIMEOUT_ENV in message
  assert server.count("/m.tar.gz") == RETRIES + 1
  # Bounded by our timeouts (3 x 0.5 s), not by the server (3 x 3 s).
  assert elapsed < 6
  assert error.transient
  assert _cache_is_empty(cache_dir)


def test_redirect_loop(server, cache_dir):
  url = server.set("/loop", fault="redirect", location="/loop")
  _, message = _fails(url)
  assert "redirect loop" in message
  assert _cache_is_empty(cache_dir)


def test_redirect_is_followed(server, cache_dir, archive):
  server.set("/real.tar.gz", archive)
  url = server.set("/m", fault="redirect", location="/real.tar.gz")
  folder = resolve_lib.resolve(url)
  assert os.path.isfile(os.path.join(folder, "tfhub_module.pb"))


def test_connection_refused(cache_dir):
  with http_server.serve() as s:
    url = s.url("/gone.tar.gz")
  _, message = _fails(url)  # The server is closed now.
  assert "connection refused" in message
  assert _cache_is_empty(cache_dir)


def test_backoff_is_bounded_and_exponential(monkeypatch, tmp_path, server):
  sleeps = []
  monkeypatch.setattr(download.time, "sleep", sleeps.append)
  url = server.set("/x", b"", fault="status", status=502)
  with pytest.raises(errors.HandleError):
    download.download(url, str(tmp_path / "f"), retries=7, backoff=5.0)
  assert sleeps == [5.0, 10.0, 20.0, 30.0, 30.0, 30.0, 30.0]


def test_bad_settings(monkeypatch):
  monkeypatch.setenv(download.TIMEOUT_ENV, "soon")
  with pytest.raises(errors.HandleError, match=download.TIMEOUT_ENV):
    download.settings()


# -- progress: a tqdm bar on a terminal, plain lines elsewhere ----------------

def _terminal(columns=200, rows=50):
  """A pseudo-terminal sized like a real one: (master fd, writable file)."""
  import fcntl  # pylint: disable=g-import-not-at-top
  import struct  # pylint: disable=g-import-not-at-top
  import termios  # pylint: disable=g-import-not-at-top
  master, slave = os.openpty()
  fcntl.ioctl(slave, termios.TIOCSWINSZ,
              struct.pack("HHHH", rows, columns, 0, 0))
  return master, os.fdopen(slave, "w", encoding="utf-8")


def _read_pty(master):
  import select  # pylint: disable=g-import-not-at-top
  out = b""
  while select.select([master], [], [], 0.2)[0]:
    try:
      chunk = os.read(master, 65536)
    except OSError:
      break
    if not chunk:
      break
    out += chunk
  return out.decode("utf-8", "replace")


def test_progress_is_a_tqdm_bar_on_a_terminal(server, cache_dir, archive,
                                              monkeypatch, capsys):
  master, terminal = _terminal()
  try:
    url = server.set("/m.tar.gz", archive)
    monkeypatch.setattr("sys.stderr", terminal)
    folder = resolve_lib.fetch(url)
    terminal.flush()
    shown = _read_pty(master)
  finally:
    terminal.close()
    os.close(master)
  assert os.path.isfile(os.path.join(folder, "saved_model.pb"))
  # tqdm redraws one line in place ("\r") with its bar, size and rate.
  assert f"Downloading {url}?tf-hub-format=compressed: 100%|" in shown
  assert "\r" in shown and "/s]" in shown
  assert "Extracting" in shown
  assert capsys.readouterr().err == ""


def test_progress_without_a_terminal_is_plain_lines(server, tmp_path,
                                                    archive):
  import io  # pylint: disable=g-import-not-at-top
  url = server.set("/m.tar.gz", archive)
  log = io.StringIO()
  bar = download.ProgressBar(url, stream=log)
  assert not bar.is_bar
  with bar:
    download.download(url, str(tmp_path / "m"), progress=bar)
  text = log.getvalue()
  assert "\r" not in text  # No redrawn bar in a log file.
  lines = text.splitlines()
  assert lines and all(l.startswith(f"Downloading {url}: ") for l in lines)
  assert "100%" in lines[-1]
  # Nothing at all without progress.
  quiet = io.StringIO()
  download.download(url, str(tmp_path / "q"))
  assert quiet.getvalue() == ""


def test_progress_restarts_with_a_retry(server, tmp_path, archive,
                                        monkeypatch):
  monkeypatch.setenv(download.BACKOFF_ENV, "0.01")
  master, terminal = _terminal(columns=0, rows=0)  # Reports no size.
  try:
    url = server.set("/m.tar.gz", archive, fault="reset", keep=700, times=1)
    with download.ProgressBar(url, stream=terminal) as bar:
      assert bar.is_bar
      download.download(url, str(tmp_path / "m"), progress=bar, retries=2)
    terminal.flush()
    shown = _read_pty(master)
  finally:
    terminal.close()
    os.close(master)
  assert server.count("/m.tar.gz") == 2
  assert shown.count("100%|") >= 1


def test_retries_are_logged(server, tmp_path, archive, caplog):
  import logging  # pylint: disable=g-import-not-at-top
  url = server.set("/m.tar.gz", archive, fault="status", status=503, times=1)
  with caplog.at_level(logging.INFO, logger="absl"):
    download.download(url, str(tmp_path / "m"), retries=1, backoff=0.01)
  warnings = [r.getMessage() for r in caplog.records
              if r.name == "absl" and r.levelno == logging.WARNING]
  assert len(warnings) == 1
  assert "HTTP 503" in warnings[0] and "retrying in 0.01 s" in warnings[0]
  assert "attempt 2 of 2" in warnings[0]
