"""Atomic, locked cache entries for downloaded and extracted models.

The layout is tensorflow_hub's, so both libraries find (and lock out) each
other's downloads: an entry is the folder ``CACHE_DIR/KEY`` (KEY is
tensorflow_hub's folder name for the handle) holding exactly the model's
files, beside the descriptor file ``CACHE_DIR/KEY.descriptor.txt``.
tensorflow_hub writes the descriptor for people (handle, time, host and pid)
and never reads it; hub_adapter writes the same lines plus one line
``hub_adapter: {JSON}`` listing every file of the entry and its size. That
line is the completion marker: nothing of ours is written inside the entry.

On a local cache folder (a plain path or a ``file://`` URL) an entry is built
like this:

1. take the exclusive lock ``CACHE_DIR/KEY.hub_adapter.lock`` with
   ``filelock`` (``flock`` on POSIX, ``LockFileEx`` on Windows), waiting at
   most ``HUB_ADAPTER_LOCK_TIMEOUT`` seconds; the operating system drops the
   lock when its holder dies, even by SIGKILL, so a crashed download never
   blocks the next one;
2. fill a fresh temporary folder ``CACHE_DIR/KEY.XXXX.hub_adapter.tmp``
   (created with the process's umask, so a shared cache stays shared);
3. write the descriptor, then ``rename`` the folder to ``CACHE_DIR/KEY``.

On any other TensorFlow file system (``gs://``, ``ram://``, ...; the Cloud
TPU set-up keeps the cache on GCS) everything goes through ``tf.io.gfile``:
the lock is tensorflow_hub's own ``CACHE_DIR/KEY.lock`` (created atomically,
holding ``host.pid.uid``), the model is prepared in a local temporary folder,
copied to ``CACHE_DIR/KEY.UID.tmp``, and renamed to ``CACHE_DIR/KEY`` after
the descriptor is written.

An entry counts only when its descriptor lists its files and every listed
file still has its recorded size, so half-written and half-deleted entries
are fetched again rather than trusted. Entries written by tensorflow_hub (no
``hub_adapter:`` line) are adopted after a caller-supplied check. Any failure
removes the temporary folder and lock file; unwritable or full cache folders
raise :class:`~hub_adapter.errors.CacheError`.

What is still written here: the holder writes ``pid N`` into the local lock
file (through filelock's ``on_acquired`` hook) so that a timed-out waiter can
say who holds it, and removes the lock file before releasing it (filelock
keeps it on POSIX; a waiter that then locks the removed file notices and
retries, which filelock does by itself). Cache hits are logged with
``absl.logging`` at DEBUG, downloads, waits and discarded entries at INFO.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import glob
import json
import os
import shutil
import socket
import tempfile
import time
import urllib.parse
import uuid
from typing import Callable, Iterator, Mapping, Optional

from absl import logging

from hub_adapter import errors
from hub_adapter import reader
from hub_adapter import runtime

DESCRIPTOR_SUFFIX = ".descriptor.txt"
MARKER_PREFIX = "hub_adapter: "
REMOTE_LOCK_SUFFIX = ".lock"  # tensorflow_hub's lock file name.
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


def local_path(path: str) -> Optional[str]:
  """The local path of a plain path or ``file://`` URL; None for the folders
  of other TensorFlow file systems (``gs://``, ``ram://``, ...).

  Args:
    path: A path or URL.

  Returns:
    The local path, or None.
  """
  if path.lower().startswith("file://"):
    return urllib.parse.unquote(urllib.parse.urlsplit(path).path)
  if "://" in path:
    return None
  return path


def umask() -> int:
  """The process's umask, read without changing it where the OS tells."""
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("Umask:"):
          return int(line.split()[1], 8)
  except (OSError, ValueError, IndexError):
    pass
  old = os.umask(0o022)  # No /proc: the classic swap (not thread-safe).
  os.umask(old)
  return old


def descriptor_path(entry: str) -> str:
  """``entry.descriptor.txt``, tensorflow_hub's descriptor file of an entry."""
  return entry + DESCRIPTOR_SUFFIX


def _file_sizes(folder: str) -> dict:
  sizes = {}
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in sorted(files):
      full = os.path.join(root, name)
      rel = os.path.relpath(full, folder).replace(os.sep, "/")
      sizes[rel] = os.lstat(full).st_size
  return sizes


def _parse_descriptor(text: str) -> Optional[dict]:
  for line in text.splitlines():
    if line.startswith(MARKER_PREFIX):
      try:
        marker = json.loads(line[len(MARKER_PREFIX):])
      except ValueError:
        return None
      if isinstance(marker, dict) and isinstance(marker.get("files"), dict):
        return marker
      return None
  return None


def read_marker(entry: str) -> Optional[dict]:
  """Our completion facts from an entry's descriptor, or None if the
  descriptor is absent, garbled or written by tensorflow_hub.

  Args:
    entry: The entry folder (local).

  Returns:
    The parsed ``hub_adapter:`` line of ``entry.descriptor.txt``, or None.
  """
  try:
    with open(descriptor_path(entry), encoding="utf-8") as f:
      return _parse_descriptor(f.read())
  except (OSError, ValueError):
    return None


def is_complete(entry: str) -> bool:
  """True when the entry's descriptor lists its files, each with its size.

  Args:
    entry: The entry folder (local).

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


def descriptor_text(handle: Optional[str], files: Mapping[str, int],
                    extra: Optional[Mapping] = None) -> str:
  """The descriptor: tensorflow_hub's three lines, then our marker line.

  Args:
    handle: The handle the entry holds.
    files: Relative file name to size, for every file of the entry.
    extra: Extra JSON-able facts for the marker line.

  Returns:
    The file's text.
  """
  marker = {"version": 2, "created": time.time(), "files": dict(files)}
  marker.update(extra or {})
  return (f"Module: {handle}\nDownload Time: {datetime.datetime.today()}\n"
          f"Downloader Hostname: {socket.gethostname()} (PID:{os.getpid()})\n"
          f"{MARKER_PREFIX}{json.dumps(marker, sort_keys=True)}\n")


def write_marker(entry: str, extra: Optional[Mapping] = None, *,
                 files_of: Optional[str] = None) -> None:
  """Writes ``entry.descriptor.txt`` (synced, atomically replaced).

  Args:
    entry: The entry folder (local); it need not exist yet.
    extra: Extra facts for the marker line; ``handle`` fills the
      descriptor's ``Module:`` line.
    files_of: The folder whose files are listed (default: ``entry``), e.g.
      the temporary folder about to be renamed to ``entry``.

  Raises:
    OSError: the file cannot be written.
  """
  extra = dict(extra or {})
  text = descriptor_text(extra.get("handle"), _file_sizes(files_of or entry),
                         extra)
  path = descriptor_path(entry)
  part = f"{path}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}"
  try:
    with open(part, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(part, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(part)
    raise


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
  _remove(descriptor_path(entry))


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
  local = local_path(cache_dir)
  if local is None:
    return _get_or_create_remote(cache_dir, key, populate, handle=handle,
                                 adopt=adopt, marker_extra=marker_extra,
                                 timeout=timeout)
  cache_dir = local
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
      # Only entries without our marker line (another writer's) may be
      # adopted; one whose listing no longer matches its files is damaged.
      if os.path.isdir(entry) and adopt is not None and \
          read_marker(entry) is None and _adopt(entry, adopt):
        logging.info("hub_adapter: using %s, which another writer (e.g. "
                     "tensorflow_hub) cached for %r.", entry, handle)
        _mark_adopted(entry, cache_dir, handle)
        return entry
      logging.info("hub_adapter: cache entry %s is incomplete or damaged; "
                   "fetching %r again.", entry, handle)
      _discard(entry)
    # Not tempfile.mkdtemp: its 0700 would lock other users out of a shared
    # cache. os.mkdir applies the umask, as tensorflow_hub's MakeDirs does.
    tmp = f"{entry}.{uuid.uuid4().hex}{TMP_SUFFIX}"
    try:
      os.mkdir(tmp)
    except OSError as e:
      raise cache_error(e, cache_dir, handle, "creating a temporary folder"
                        ) from e
    wrote_descriptor = False
    try:
      populate(tmp)
      write_marker(entry, dict(marker_extra or {}, handle=handle),
                   files_of=tmp)
      wrote_descriptor = True
      try:
        os.rename(tmp, entry)
      except OSError as e:
        # Another writer that ignores our lock (tensorflow_hub) got there
        # first; its entry is as good as ours.
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not (
            is_complete(entry) or (adopt is not None and _adopt(entry, adopt))):
          raise
        _remove(tmp)
        if not is_complete(entry):
          _mark_adopted(entry, cache_dir, handle)
      else:
        logging.info("hub_adapter: cached %r in %s.", handle, entry)
    except BaseException as e:
      _remove(tmp)
      if wrote_descriptor and not os.path.isdir(entry):
        _remove(descriptor_path(entry))
      if isinstance(e, OSError) and not isinstance(e, errors.HubAdapterError):
        raise cache_error(e, cache_dir, handle, "writing the entry") from e
      raise
  return entry


def _mark_adopted(entry: str, cache_dir: str, handle: Optional[str]) -> None:
  try:
    write_marker(entry, {"adopted": True, "handle": handle})
  except OSError as e:
    raise cache_error(e, cache_dir, handle, "marking an entry") from e


def copy_tree(source: str, target: str) -> None:
  """Copies a folder with ``tf.io.gfile`` (either side may be any TF file
  system); ``target`` must not exist.

  Args:
    source: The folder to copy.
    target: The new folder.

  Raises:
    tf.errors.OpError: a read or write failed.
  """
  gfile = runtime.tf().io.gfile
  gfile.makedirs(target)
  for name in children(source):
    src, dst = _join(source, name), _join(target, name)
    if gfile.isdir(src):
      copy_tree(src, dst)
    else:
      gfile.copy(src, dst, overwrite=False)


def _join(folder: str, name: str) -> str:
  return folder.rstrip("/") + "/" + name if "://" in folder else \
      os.path.join(folder, name)


def children(folder: str) -> list:
  """The names in a folder of any TF file system, sorted.

  ``ram://`` matches names by prefix, so ``ram://c/KEY`` also "holds"
  ``.lock`` and ``.descriptor.txt`` when ``KEY.lock`` and
  ``KEY.descriptor.txt`` lie beside it; names that are such echoes of a
  sibling are left out.

  Args:
    folder: The folder.

  Returns:
    Its entries' names (without trailing slashes).

  Raises:
    tf.errors.OpError: the folder cannot be listed.
  """
  gfile = runtime.tf().io.gfile
  names = sorted(n.rstrip("/") for n in gfile.listdir(folder))
  if "://" in folder and "/" in folder.split("://", 1)[1].rstrip("/"):
    parent, base = folder.rstrip("/").rsplit("/", 1)
    siblings = {n.rstrip("/") for n in gfile.listdir(parent)}
    names = [n for n in names if base + n not in siblings]
  return names


def remote_files(folder: str) -> dict:
  """Relative name to size for every file under a folder of any TF file
  system (see :func:`children`)."""
  gfile = runtime.tf().io.gfile
  sizes = {}
  for name in children(folder):
    full = _join(folder, name)
    if gfile.isdir(full):
      sizes.update({f"{name}/{rel}": size
                    for rel, size in remote_files(full).items()})
    else:
      sizes[name] = gfile.stat(full).length
  return sizes


def read_remote_marker(entry: str) -> Optional[dict]:
  """:func:`read_marker` for an entry on another TF file system."""
  tf = runtime.tf()
  try:
    with tf.io.gfile.GFile(descriptor_path(entry), "r") as f:
      return _parse_descriptor(f.read())
  except (tf.errors.OpError, ValueError):
    return None


def is_complete_remote(entry: str) -> bool:
  """:func:`is_complete` for an entry on another TF file system."""
  tf = runtime.tf()
  marker = read_remote_marker(entry)
  if marker is None or not marker["files"]:
    return False
  try:
    return all(tf.io.gfile.stat(_join(entry, rel)).length == size
               for rel, size in marker["files"].items())
  except tf.errors.OpError:
    return False


def _write_remote(path: str, text: str, overwrite: bool) -> None:
  """Writes a file atomically (a temporary name, then rename), as
  tensorflow_hub writes its lock and descriptor files.

  The temporary name does not start with ``path``: ``ram://`` refuses a
  rename onto a name that is a prefix of an existing one.
  """
  tf = runtime.tf()
  head, tail = path.rsplit("/", 1)
  part = f"{head}/.hub_adapter-{uuid.uuid4().hex}-{tail}.part"
  try:
    with tf.io.gfile.GFile(part, "w") as f:
      f.write(text)
    tf.io.gfile.rename(part, path, overwrite=overwrite)
  except BaseException:
    with contextlib.suppress(tf.errors.OpError):
      tf.io.gfile.remove(part)
    raise


@contextlib.contextmanager
def remote_entry_lock(cache_dir: str, key: str, task_uid: str, *,
                      handle: Optional[str] = None,
                      timeout: Optional[float] = None) -> Iterator[str]:
  """Holds tensorflow_hub's lock file ``KEY.lock`` on a non-local cache.

  The file is created atomically (write, then rename without overwrite) and
  holds ``host.pid.uid`` as tensorflow_hub's does, so the two libraries
  exclude each other. A waiter polls until the file is gone.

  Args:
    cache_dir: The cache folder (a TF file system URL).
    key: The entry's name.
    task_uid: Names this holder's temporary folder ``KEY.UID.tmp``.
    handle: The handle, for messages.
    timeout: Seconds to wait (default: env or 1800).

  Yields:
    The lock file's path.

  Raises:
    CacheError: the lock was held longer than the timeout, or the lock file
      cannot be written.
  """
  tf = runtime.tf()
  path = _join(cache_dir, key) + REMOTE_LOCK_SUFFIX
  wait = lock_timeout(timeout)
  contents = f"{socket.gethostname()}.{os.getpid()}.{task_uid}"
  deadline = time.monotonic() + wait
  logged = False
  while True:
    try:
      _write_remote(path, contents, overwrite=False)
      break
    except (tf.errors.NotFoundError, tf.errors.PermissionDeniedError,
            tf.errors.UnauthenticatedError, tf.errors.ResourceExhaustedError,
            tf.errors.UnimplementedError) as e:
      raise _remote_cache_error(e, cache_dir, handle, "creating the lock "
                                f"file {path}") from e
    except tf.errors.OpError:
      pass  # Held by another process: wait for it to go.
    if time.monotonic() >= deadline:
      raise errors.CacheError(errors.compose(
          f"Timed out after {wait:g} s waiting for another process to "
          f"finish downloading {handle!r} into the cache.",
          f"The lock file {path} (held by {_remote_holder(path)}) is still "
          "there.",
          f"Wait for that process, or raise {LOCK_TIMEOUT_ENV}; if the "
          "holder died, delete the lock file (a lock file on a remote file "
          "system outlives its process).",
          {"handle": handle, "cache folder": cache_dir}),
          handle=handle, cache_dir=cache_dir, lock=path)
    if not logged:
      logging.info("hub_adapter: waiting up to %g s for %s (%s) to finish "
                   "downloading %r into the cache.", wait,
                   _remote_holder(path), path, handle)
      logged = True
    time.sleep(min(1.0, max(0.0, deadline - time.monotonic())) or 0.01)
  try:
    yield path
  finally:
    with contextlib.suppress(tf.errors.OpError):
      tf.io.gfile.remove(path)


def _remote_holder(path: str) -> str:
  tf = runtime.tf()
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      return f.read().strip() or "another process"
  except tf.errors.OpError:
    return "another process"


def _remote_cache_error(exc: Exception, cache_dir: str,
                        handle: Optional[str], doing: str
                        ) -> errors.CacheError:
  return errors.CacheError(errors.compose(
      f"Cannot write the model cache for {handle!r}.",
      f"{type(exc).__name__} while {doing}: {exc}",
      "Check that the cache folder exists and is writable with your "
      "credentials, or point TFHUB_CACHE_DIR at a folder that is.",
      {"handle": handle, "cache folder": cache_dir}),
      handle=handle, cache_dir=cache_dir)


def _get_or_create_remote(cache_dir: str, key: str,
                          populate: Callable[[str], None], *,
                          handle: Optional[str],
                          adopt: Optional[Callable[[str], bool]],
                          marker_extra: Optional[Mapping],
                          timeout: Optional[float]) -> str:
  """:func:`get_or_create` on a non-local TF file system (``gs://``, ...).

  ``adopt`` is not called here (it reads local files): an unmarked entry
  (tensorflow_hub's) is used when it holds ``saved_model.pb``, which is
  tensorflow_hub's own test and more; the loader checks it again.
  """
  del adopt  # Checked by the loader on its local copy.
  tf = runtime.tf()
  gfile = tf.io.gfile
  entry = _join(cache_dir, key)
  descriptor = descriptor_path(entry)
  if is_complete_remote(entry):
    logging.debug("hub_adapter: cache hit for %r: %s", handle, entry)
    return entry
  try:
    gfile.makedirs(cache_dir)
  except tf.errors.OpError as e:
    raise _remote_cache_error(e, cache_dir, handle,
                              "creating the cache folder") from e
  task_uid = uuid.uuid4().hex
  with remote_entry_lock(cache_dir, key, task_uid, handle=handle,
                         timeout=timeout):
    if is_complete_remote(entry):
      return entry
    try:
      # Looked up in the listing: on ram:// exists() answers by prefix.
      present = set(children(cache_dir))
      if key in present:
        # tensorflow_hub writes its descriptor (without our line) before it
        # renames its folder into place; a folder of ours without a
        # descriptor is a copy that was cut short.
        if key + DESCRIPTOR_SUFFIX in present and \
            read_remote_marker(entry) is None \
            and any(gfile.exists(_join(entry, n))
                    for n in (reader.SAVED_MODEL_PB,
                              reader.SAVED_MODEL_PBTXT)):
          logging.info("hub_adapter: using %s, which another writer (e.g. "
                       "tensorflow_hub) cached for %r.", entry, handle)
          _write_remote(descriptor, descriptor_text(
              handle, remote_files(entry), {"adopted": True,
                                             "handle": handle}), True)
          return entry
        logging.info("hub_adapter: cache entry %s is incomplete or damaged; "
                     "fetching %r again.", entry, handle)
        gfile.rmtree(entry)
    except tf.errors.OpError as e:
      raise _remote_cache_error(e, cache_dir, handle,
                                "checking the entry") from e
    local_tmp = tempfile.mkdtemp(prefix="hub_adapter_remote_")
    done = False
    try:
      populate(local_tmp)
      files = _file_sizes(local_tmp)
      # Copied in place under the lock, the descriptor last: folder renames
      # are copies on GCS and lose the files on ram://. Until the
      # descriptor lists the files, the entry does not count.
      copy_tree(local_tmp, entry)
      _write_remote(descriptor, descriptor_text(
          handle, files, dict(marker_extra or {}, handle=handle)), True)
      done = True
      logging.info("hub_adapter: cached %r in %s.", handle, entry)
    except tf.errors.OpError as e:
      raise _remote_cache_error(e, cache_dir, handle,
                                "writing the entry") from e
    finally:
      shutil.rmtree(local_tmp, ignore_errors=True)
      if not done:
        with contextlib.suppress(tf.errors.OpError):
          present = set(children(cache_dir))
          if key in present:
            gfile.rmtree(entry)
          if key + DESCRIPTOR_SUFFIX in present:
            gfile.remove(descriptor)
  return entry


def _adopt(entry: str, adopt: Callable[[str], bool]) -> bool:
  try:
    return bool(adopt(entry))
  except errors.HubAdapterError:
    return False


__all__ = ["get_or_create", "is_complete", "read_marker", "write_marker",
           "entry_lock", "lock_timeout", "cache_error",
           "descriptor_path", "local_path", "copy_tree", "is_complete_remote", "children", "remote_files",
           "read_remote_marker", "remote_entry_lock", "umask", "MARKER_PREFIX",
           "DESCRIPTOR_SUFFIX", "REMOTE_LOCK_SUFFIX",
           "LOCK_SUFFIX", "TMP_SUFFIX", "LOCK_TIMEOUT_ENV"]
