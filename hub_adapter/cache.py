"""Atomic, locked cache entries for downloaded and extracted models.

An entry is the folder ``CACHE_DIR/KEY`` (KEY is tensorflow_hub's folder name
for the handle, so both libraries find each other's downloads). It is built
like this:

1. take the exclusive lock ``CACHE_DIR/KEY.hub_adapter.lock`` with
   ``filelock`` (``flock`` on POSIX, ``LockFileEx`` on Windows), waiting at
   most ``HUB_ADAPTER_LOCK_TIMEOUT`` seconds; the operating system drops the
   lock when its holder dies, even by SIGKILL, so a crashed download never
   blocks the next one;
2. fill a fresh temporary folder ``CACHE_DIR/KEY.XXXX.hub_adapter.tmp``;
3. write a completion marker (``.hub_adapter_complete``: JSON listing every
   file and its size) into it, then ``rename`` it to ``CACHE_DIR/KEY``.

An entry counts only when its marker is present and every listed file still
has its recorded size, so half-written and half-deleted entries are fetched
again rather than trusted. Entries written by tensorflow_hub (no marker) are
adopted after a caller-supplied check. Any failure removes the temporary
folder and lock file; unwritable or full cache folders raise
:class:`~hub_adapter.errors.CacheError`.

What is still written here: the holder writes ``pid N`` into the lock file
(through filelock's ``on_acquired`` hook) so that a timed-out waiter can say
who holds it, and removes the lock file before releasing it (filelock keeps
it on POSIX; a waiter that then locks the removed file notices and retries,
which filelock does by itself). Cache hits are logged with ``absl.logging``
at DEBUG, downloads, waits and discarded entries at INFO.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import tempfile
import time
import uuid
from typing import Callable, Iterator, Mapping, Optional

from absl import logging

from hub_adapter import errors

MARKER = ".hub_adapter_complete"
LOCK_SUFFIX = ".hub_adapter.lock"
TMP_SUFFIX = ".hub_adapter.tmp"
LOCK_TIMEOUT_ENV = "HUB_ADAPTER_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 1800.0

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def lock_timeout(value: Optional[float] = None) -> float:
  """Seconds to wait for an entry's lock: argument, env, then 1800."""
  if value is not None:
    return float(value)
  raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
  if not raw:
    return DEFAULT_LOCK_TIMEOUT
  try:
    return max(0.0, float(raw))
  except ValueError:
    raise errors.CacheError(errors.compose(
        f"Environment variable {LOCK_TIMEOUT_ENV}={raw!r} is not a number.",
        "It bounds how long to wait for another process's download.",
        f"Set it to seconds (e.g. 600) or unset it (default "
        f"{DEFAULT_LOCK_TIMEOUT:g})."), variable=LOCK_TIMEOUT_ENV) from None


def cache_error(exc: OSError, cache_dir: str, handle: Optional[str],
                doing: str) -> errors.CacheError:
  """Turns an OSError met while writing the cache into a CacheError."""
  if exc.errno in _FULL:
    why = (f"The file system holding the cache is full ({exc.strerror}) "
           f"while {doing}.")
    fix = ("Free space there, or point TFHUB_CACHE_DIR at a folder with "
           "room for the model.")
  elif exc.errno in _DENIED:
    why = f"The cache folder is not writable ({exc.strerror}) while {doing}."
    fix = ("Make it writable, or point TFHUB_CACHE_DIR at a writable folder "
           "(e.g. export TFHUB_CACHE_DIR=$HOME/.cache/tfhub_modules).")
  else:
    why = f"{type(exc).__name__}: {exc} while {doing}."
    fix = "Check the cache folder, or point TFHUB_CACHE_DIR elsewhere."
  return errors.CacheError(
      errors.compose(f"Cannot write the model cache for {handle!r}.", why, fix,
                     {"handle": handle, "cache folder": cache_dir,
                      "path": getattr(exc, "filename", None)}),
      handle=handle, cache_dir=cache_dir, errno=exc.errno)


def _file_sizes(folder: str) -> dict:
  sizes = {}
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in sorted(files):
      full = os.path.join(root, name)
      rel = os.path.relpath(full, folder).replace(os.sep, "/")
      if rel != MARKER:
        sizes[rel] = os.lstat(full).st_size
  return sizes


def read_marker(entry: str) -> Optional[dict]:
  """The parsed completion marker of an entry, or None if absent/garbled."""
  try:
    with open(os.path.join(entry, MARKER), encoding="utf-8") as f:
      marker = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(marker, dict) or not isinstance(marker.get("files"), dict):
    return None
  return marker


def is_complete(entry: str) -> bool:
  """True when the entry has its marker and every listed file, same size.

  Args:
    entry: The entry folder.

  Returns:
    Whether the entry can be used as it is.
  """
  marker = read_marker(entry)
  if marker is None or not marker["files"]:
    return False
  for rel, size in marker["files"].items():
    try:
      if os.lstat(os.path.join(entry, *rel.split("/"))).st_size != size:
        return False
    except OSError:
      return False
  return True


def write_marker(folder: str, extra: Optional[Mapping] = None) -> None:
  """Writes the completion marker of ``folder`` (listing its files), synced."""
  marker = {"version": 1, "created": time.time(), "files": _file_sizes(folder)}
  marker.update(extra or {})
  path = os.path.join(folder, MARKER)
  with open(path + ".part", "w", encoding="utf-8") as f:
    json.dump(marker, f, indent=1, sort_keys=True)
    f.flush()
    os.fsync(f.fileno())
  os.replace(path + ".part", path)


def _write_holder_note(fd: int) -> None:
  """filelock's ``on_acquired`` hook: says who holds the lock, for waiters."""
  try:
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}\n".encode())
  except OSError:
    pass  # The holder note is a courtesy; a full disk must not break locking.


@contextlib.contextmanager
def entry_lock(cache_dir: str, key: str, *, handle: Optional[str] = None,
               timeout: Optional[float] = None) -> Iterator[str]:
  """Holds the exclusive lock of one entry; yields the lock file's path.

  The lock file is removed on release. Waiters that locked a file which was
  removed meanwhile notice (filelock checks that the locked file still has a
  name) and retry.

  Raises:
    CacheError: the lock could not be taken within the timeout, or the lock
      file cannot be created.
  """
  # Imported here: a local folder needs no lock, and loads skip the import.
  import filelock  # pylint: disable=g-import-not-at-top
  path = os.path.join(cache_dir, key + LOCK_SUFFIX)
  wait = lock_timeout(timeout)
  lock = filelock.FileLock(path, mode=0o644, thread_local=False,
                           on_acquired=_write_holder_note)
  try:
    try:
      lock.acquire(timeout=0)
    except filelock.Timeout:
      logging.info("hub_adapter: waiting up to %g s for %s (%s) to finish "
                   "downloading %r into the cache.", wait, _holder(path),
                   path, handle)
      lock.acquire(timeout=wait)
  except filelock.Timeout:
    raise errors.CacheError(errors.compose(
        f"Timed out after {wait:g} s waiting for another process to "
        f"finish downloading {handle!r} into the cache.",
        f"The lock {path} is held by {_holder(path)}.",
        f"Wait for that process, or raise {LOCK_TIMEOUT_ENV}; if the "
        "holder is hung, stop it (a dead holder releases the lock by "
        "itself).", {"handle": handle, "cache folder": cache_dir}),
        handle=handle, cache_dir=cache_dir, lock=path) from None
  except OSError as e:
    raise cache_error(e, cache_dir, handle, "creating the lock file"
                      if not os.path.exists(path) else "locking the entry"
                      ) from e
  try:
    yield path
  finally:
    with contextlib.suppress(OSError):
      os.unlink(path)  # While held: no one can lock this name in between.
    lock.release()


def _holder(path: str) -> str:
  try:
    with open(path, encoding="utf-8") as f:
      note = f.read().strip()
  except OSError:
    note = ""
  return note or "another process"


def _remove(path: str) -> None:
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  else:
    with contextlib.suppress(OSError):
      os.unlink(path)


def _discard(entry: str) -> None:
  """Moves a broken entry aside (atomically) and deletes it."""
  aside = f"{entry}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}"
  try:
    os.rename(entry, aside)
  except OSError:
    aside = entry
  _remove(aside)


def get_or_create(cache_dir: str, key: str,
                  populate: Callable[[str], None], *,
                  handle: Optional[str] = None,
                  adopt: Optional[Callable[[str], bool]] = None,
                  marker_extra: Optional[Mapping] = None,
                  timeout: Optional[float] = None) -> str:
  """Returns the complete entry ``cache_dir/key``, creating it if needed.

  Args:
    cache_dir: The cache folder (created if missing).
    key: The entry's folder name.
    populate: Called with an empty temporary folder to fill with the model
      (download and extract). It raises to abort; nothing is kept then.
    handle: The handle, for messages.
    adopt: Called with an existing entry that has no marker (e.g. one
      tensorflow_hub wrote); True keeps it (a marker is added), False
      fetches again. Entries whose marker no longer matches their files are
      always fetched again. Default: fetch again.
    marker_extra: Extra JSON-able facts stored in the marker.
    timeout: Seconds to wait for another process's lock (default: env
      ``HUB_ADAPTER_LOCK_TIMEOUT`` or 1800).

  Returns:
    The entry folder.

  Raises:
    CacheError: the cache folder is unwritable or full, or the lock wait
      timed out.
    HubAdapterError: whatever ``populate`` raised (HandleError,
      ArchiveError, ...), after cleaning up.
  """
  entry = os.path.join(cache_dir, key)
  if is_complete(entry):
    logging.debug("hub_adapter: cache hit for %r: %s", handle, entry)
    return entry
  try:
    os.makedirs(cache_dir, exist_ok=True)
  except OSError as e:
    raise cache_error(e, cache_dir, handle, "creating the cache folder") from e
  with entry_lock(cache_dir, key, handle=handle, timeout=timeout):
    for stale in glob.glob(glob.escape(os.path.join(cache_dir, key)) + ".*"
                           + TMP_SUFFIX):
      logging.info("hub_adapter: removing %s, left by an interrupted "
                   "download.", stale)
      _remove(stale)  # Left by a holder that died: we hold the lock now.
    if is_complete(entry):
      logging.debug("hub_adapter: cache hit for %r (written while waiting):"
                    " %s", handle, entry)
      return entry
    if os.path.lexists(entry):
      # Only entries without our marker (another writer's) may be adopted;
      # one whose marker no longer matches its files is damaged.
      if os.path.isdir(entry) and adopt is not None and \
          read_marker(entry) is None and _adopt(entry, adopt):
        logging.info("hub_adapter: using %s, which another writer (e.g. "
                     "tensorflow_hub) cached for %r.", entry, handle)
        try:
          write_marker(entry, {"adopted": True, "handle": handle})
        except OSError as e:
          raise cache_error(e, cache_dir, handle, "marking an entry") from e
        return entry
      logging.info("hub_adapter: cache entry %s is incomplete or damaged; "
                   "fetching %r again.", entry, handle)
      _discard(entry)
    try:
      tmp = tempfile.mkdtemp(prefix=key + ".", suffix=TMP_SUFFIX,
                             dir=cache_dir)
    except OSError as e:
      raise cache_error(e, cache_dir, handle, "creating a temporary folder"
                        ) from e
    try:
      populate(tmp)
      write_marker(tmp, dict(marker_extra or {}, handle=handle))
      try:
        os.rename(tmp, entry)
      except OSError as e:
        # Another writer that ignores our lock (tensorflow_hub) got there
        # first; its entry is as good as ours.
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not (
            is_complete(entry) or (adopt is not None and _adopt(entry, adopt))):
          raise
        _remove(tmp)
      else:
        logging.info("hub_adapter: cached %r in %s.", handle, entry)
    except OSError as e:
      _remove(tmp)
      if isinstance(e, errors.HubAdapterError):
        raise
      raise cache_error(e, cache_dir, handle, "writing the entry") from e
    except BaseException:
      _remove(tmp)
      raise
  return entry


def _adopt(entry: str, adopt: Callable[[str], bool]) -> bool:
  try:
    return bool(adopt(entry))
  except errors.HubAdapterError:
    return False


__all__ = ["get_or_create", "is_complete", "read_marker", "write_marker",
           "entry_lock", "lock_timeout", "cache_error", "MARKER",
           "LOCK_SUFFIX", "TMP_SUFFIX", "LOCK_TIMEOUT_ENV"]
