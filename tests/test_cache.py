"""Atomic cache entries: markers, locks, concurrent and killed downloads,
unwritable and full cache folders."""
import contextlib
import importlib
import io
import multiprocessing
import os
import resource
import signal
import subprocess
import tarfile
import threading
import time

import pytest

from hub_adapter import cache
from hub_adapter import errors

import http_server  # pylint: disable=wrong-import-order

resolve_lib = importlib.import_module("hub_adapter.handles")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
  folder = tmp_path / "cache"
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(folder))
  monkeypatch.setenv("HUB_ADAPTER_HTTP_BACKOFF", "0.01")
  monkeypatch.setenv("HUB_ADAPTER_HTTP_TIMEOUT", "10")
  return folder


@pytest.fixture(scope="module")
def archive(shared_fixtures):
  with open(shared_fixtures.archive("tf2_text_vocab_asset"), "rb") as f:
    return f.read()


def _fill(files):
  def populate(tmp):
    for name, data in files.items():
      os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
      with open(os.path.join(tmp, name), "wb") as f:
        f.write(data)
  return populate


def test_entry_counts_only_with_a_matching_marker(tmp_path):
  entry = cache.get_or_create(str(tmp_path), "k", _fill(
      {"saved_model.pb": b"abc", "variables/v": b"12345"}))
  assert cache.read_marker(entry)["files"] == {"saved_model.pb": 3,
                                               "variables/v": 5}
  assert cache.is_complete(entry)
  # tensorflow_hub's layout; no lock or temp left, nothing of ours inside.
  assert sorted(os.listdir(tmp_path)) == ["k", "k.descriptor.txt"]
  assert sorted(os.listdir(entry)) == ["saved_model.pb", "variables"]
  os.remove(os.path.join(entry, "variables", "v"))
  assert not cache.is_complete(entry)
  with open(os.path.join(entry, "variables", "v"), "wb") as f:
    f.write(b"123")
  assert not cache.is_complete(entry)
  with open(cache.descriptor_path(entry), "w") as f:
    f.write(cache.MARKER_PREFIX + "{garbled")
  assert not cache.is_complete(entry)
  # A broken entry is replaced by a fresh one.
  calls = []
  populate = _fill({"saved_model.pb": b"xyz"})
  cache.get_or_create(str(tmp_path), "k", lambda t: (calls.append(t),
                                                     populate(t)))
  assert len(calls) == 1 and cache.is_complete(entry)
  assert os.listdir(entry) == ["saved_model.pb"]


def test_failed_populate_leaves_nothing(tmp_path):
  def populate(tmp):
    _fill({"saved_model.pb": b"abc"})(tmp)
    raise errors.HandleError("download failed")
  with pytest.raises(errors.HandleError, match="download failed"):
    cache.get_or_create(str(tmp_path), "k", populate)
  assert os.listdir(tmp_path) == []
  with pytest.raises(KeyboardInterrupt):
    cache.get_or_create(str(tmp_path), "k", lambda t: (_ for _ in ()).throw(
        KeyboardInterrupt()))
  assert os.listdir(tmp_path) == []


def test_stale_temp_folders_are_removed(tmp_path):
  stale = tmp_path / ("k.abc" + cache.TMP_SUFFIX)
  stale.mkdir()
  (stale / "saved_model.pb").write_bytes(b"half")
  other = tmp_path / ("other.abc" + cache.TMP_SUFFIX)
  other.mkdir()
  cache.get_or_create(str(tmp_path), "k", _fill({"saved_model.pb": b"x"}))
  assert sorted(os.listdir(tmp_path)) == sorted(["k", "k.descriptor.txt",
                                                 other.name])


def test_lock_wait_is_bounded(cache_dir, archive, monkeypatch):
  monkeypatch.setenv(cache.LOCK_TIMEOUT_ENV, "0.3")
  with http_server.serve({"/m.tar.gz": archive}) as server:
    url = server.url("/m.tar.gz")
    os.makedirs(cache_dir)
    resolve_lib.download_url(url)  # Imports tensorflow_hub before timing.
    with cache.entry_lock(str(cache_dir), resolve_lib.cache_key(url)):
      start = time.monotonic()
      with pytest.raises(errors.CacheError, match="Timed out after 0.3 s") as e:
        resolve_lib.resolve(url)
      assert time.monotonic() - start < 2
      assert f"pid {os.getpid()}" in str(e.value)
      assert cache.LOCK_TIMEOUT_ENV in str(e.value)
    assert server.count("/m.tar.gz") == 0
    assert os.listdir(cache_dir) == []  # The holder removed its lock file.


def test_waiter_uses_the_holders_entry(tmp_path):
  started = threading.Event()
  def slow(tmp):
    started.set()
    time.sleep(0.3)
    _fill({"saved_model.pb": b"x"})(tmp)
  results = []
  holder = threading.Thread(target=lambda: results.append(
      cache.get_or_create(str(tmp_path), "k", slow)))
  holder.start()
  started.wait(5)
  def must_not_run(tmp):
    raise AssertionError("the waiter downloaded too")
  results.append(cache.get_or_create(str(tmp_path), "k", must_not_run))
  holder.join()
  assert results[0] == results[1]


def _resolve_in_child(url, barrier, queue):
  try:
    barrier.wait(30)
    queue.put(("ok", resolve_lib.resolve(url)))
  except BaseException as e:  # pylint: disable=broad-except
    queue.put(("error", f"{type(e).__name__}: {e}"))


def test_eight_processes_one_download(cache_dir, archive):
  context = multiprocessing.get_context("fork")
  with http_server.serve() as server:
    url = server.set("/m.tar.gz", archive, fault="slow", delay=0.5)
    barrier = context.Barrier(8)
    queue = context.Queue()
    procs = [context.Process(target=_resolve_in_child,
                             args=(url, barrier, queue)) for _ in range(8)]
    for p in procs:
      p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
      p.join(30)
    assert server.count("/m.tar.gz") == 1
  assert {r[0] for r in results} == {"ok"}, results
  assert len({r[1] for r in results}) == 1
  assert cache.is_complete(results[0][1])
  assert sorted(os.listdir(cache_dir)) == [
      os.path.basename(results[0][1]),
      os.path.basename(cache.descriptor_path(results[0][1]))]


def test_killed_download_recovers(cache_dir, archive):
  context = multiprocessing.get_context("fork")
  with http_server.serve() as server:
    url = server.set("/m.tar.gz", archive, fault="stall", delay=60)
    queue = context.Queue()
    child = context.Process(target=_resolve_in_child,
                            args=(url, context.Barrier(1), queue))
    child.start()
    assert server.stalled.wait(60)
    deadline = time.monotonic() + 10
    while not any(n.endswith(cache.TMP_SUFFIX) for n in os.listdir(cache_dir)):
      assert time.monotonic() < deadline
      time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL
    left = os.listdir(cache_dir)
    assert any(n.endswith(cache.TMP_SUFFIX) for n in left)  # Half-written.
    server.set("/m.tar.gz", archive)
    folder = resolve_lib.resolve(url)
    assert server.count("/m.tar.gz") == 2
  assert cache.is_complete(folder)
  assert sorted(os.listdir(cache_dir)) == [
      os.path.basename(folder),
      os.path.basename(cache.descriptor_path(folder))]


# -- unwritable and full cache folders --------------------------------------

@contextlib.contextmanager
def _mounted_tmpfs(path, options):
  os.makedirs(path, exist_ok=True)
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs",
                           str(path)], capture_output=True, check=False)
  if result.returncode != 0:
    yield False
    return
  try:
    yield True
  finally:
    subprocess.run(["umount", "-l", str(path)], check=False)


def _big_model_archive(shared_fixtures, path, size=1_000_000):
  with tarfile.open(path, "w:gz") as tar:
    tar.add(shared_fixtures.path("half_plus_two_v1"), arcname=".")
    data = os.urandom(size)  # Random: the archive cannot compress it away.
    info = tarfile.TarInfo("./assets/big.bin")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
  return str(path)


def test_unwritable_cache_folder(tmp_path, monkeypatch, shared_fixtures):
  mount = tmp_path / "ro"
  with _mounted_tmpfs(mount, "ro,size=64k") as mounted:
    if not mounted:  # No mount privilege: fall back to permissions.
      mount.mkdir(exist_ok=True)
      os.chmod(mount, 0o555)
    cache_root = mount / "cache"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache_root))
    with pytest.raises(errors.CacheError, match="not writable") as e:
      resolve_lib.resolve(shared_fixtures.archive("half_plus_two_v1"))
    assert "TFHUB_CACHE_DIR" in str(e.value)
    assert str(cache_root) in str(e.value)
    assert not cache_root.exists()


def _resolve_with_file_size_limit(handle, limit):
  """Runs resolve in a child whose files may not exceed ``limit`` bytes
  (the unprivileged stand-in for a full disk); returns (error type, message,
  leftover names)."""
  context = multiprocessing.get_context("fork")
  queue = context.Queue()
  def child():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
      resolve_lib.resolve(handle)
      queue.put((None, "", []))
    except Exception as e:  # pylint: disable=broad-except
      folder = os.environ["TFHUB_CACHE_DIR"]
      queue.put((type(e).__name__, str(e), os.listdir(folder)))
  proc = context.Process(target=child)
  proc.start()
  result = queue.get(timeout=120)
  proc.join(30)
  return result


@pytest.mark.parametrize("source", ["archive", "url"])
def test_full_disk(tmp_path, monkeypatch, shared_fixtures, source):
  archive = _big_model_archive(shared_fixtures, tmp_path / "big.tar.gz")
  monkeypatch.setenv("HUB_ADAPTER_HTTP_BACKOFF", "0.01")
  with contextlib.ExitStack() as stack:
    handle = archive
    if source == "url":
      with open(archive, "rb") as f:
        server = stack.enter_context(http_server.serve({"/big.tar.gz":
                                                        f.read()}))
      handle = server.url("/big.tar.gz")
    mount = tmp_path / "small"
    mounted = stack.enter_context(_mounted_tmpfs(mount, "size=256k"))
    cache_root = (mount if mounted else tmp_path) / "cache"
    cache_root.mkdir()
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache_root))
    if mounted:
      with pytest.raises(errors.CacheError) as e:
        resolve_lib.resolve(handle)
      kind, message, left = "CacheError", str(e.value), os.listdir(cache_root)
    else:
      kind, message, left = _resolve_with_file_size_limit(handle, 256 * 1024)
    assert kind == "CacheError", message
    assert "is full" in message and "TFHUB_CACHE_DIR" in message
    assert left == []


# -- logging (absl) --------------------------------------------------------------

def test_cache_hits_are_logged_at_debug(cache_dir, archive, caplog):
  import logging  # pylint: disable=g-import-not-at-top
  with http_server.serve({"/m.tar.gz": archive}) as server:
    url = server.url("/m.tar.gz")
    with caplog.at_level(logging.DEBUG, logger="absl"):
      folder = resolve_lib.resolve(url)
      fetched = [r for r in caplog.records if r.name == "absl"]
      caplog.clear()
      assert resolve_lib.resolve(url) == folder
      hits = [r for r in caplog.records if r.name == "absl"]
  assert any(r.levelno == logging.INFO and "downloading" in r.getMessage()
             for r in fetched)
  assert any(r.levelno == logging.INFO and "cached" in r.getMessage()
             for r in fetched)
  assert [r.levelno for r in hits] == [logging.DEBUG]
  assert "cache hit" in hits[0].getMessage() and url in hits[0].getMessage()
  assert server.count("/m.tar.gz") == 1


def test_waiting_for_a_lock_is_logged(tmp_path, caplog):
  import logging  # pylint: disable=g-import-not-at-top
  started = threading.Event()
  def slow(tmp):
    started.set()
    time.sleep(0.3)
    _fill({"saved_model.pb": b"x"})(tmp)
  holder = threading.Thread(target=cache.get_or_create,
                            args=(str(tmp_path), "k", slow))
  holder.start()
  started.wait(5)
  with caplog.at_level(logging.DEBUG, logger="absl"):
    cache.get_or_create(str(tmp_path), "k", _fill({}), handle="the-handle")
  holder.join()
  messages = [r.getMessage() for r in caplog.records if r.name == "absl"]
  assert any("waiting up to" in m and f"pid {os.getpid()}" in m
             and "'the-handle'" in m for m in messages), messages
  assert any("written while waiting" in m for m in messages), messages


def test_lock_is_filelock_and_left_nowhere(tmp_path):
  # The lock is filelock's (flock on POSIX): a second holder in this process
  # waits like one in another process, and no lock file stays behind.
  import filelock  # pylint: disable=g-import-not-at-top
  with cache.entry_lock(str(tmp_path), "k") as path:
    with open(path) as f:
      assert f.read() == f"pid {os.getpid()}\n"
    with pytest.raises(filelock.Timeout):
      filelock.FileLock(path).acquire(timeout=0.1)
  assert os.listdir(tmp_path) == []
  with cache.entry_lock(str(tmp_path), "k"):
    pass
  assert os.listdir(tmp_path) == []
