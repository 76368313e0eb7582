"""Turns a model handle into a local model folder.

Accepted handles (:data:`ACCEPTED_FORMS`):

- a local model folder (returned as an absolute path after a check that it
  holds ``saved_model.pb``);
- a local ``.tar.gz``/``.tgz``/``.tar`` archive of a model folder (which
  tensorflow_hub cannot load), extracted safely into the cache;
- an ``http(s)://`` URL serving such an archive, including tfhub.dev and
  Kaggle model URLs, fetched the way tensorflow_hub fetches them (its own
  functions form the URL: ``?tf-hub-format=compressed`` is appended, and
  ``hub.tensorflow.google.cn`` handles go to their GCS mirror);
- ``file://`` URLs of local folders and archives;
- folders and archives on other TensorFlow file systems (``gs://``,
  ``ram://``, ``s3://``, ...), read with ``tf.io.gfile``; a folder there is
  copied into the local cache once (hub_adapter inspects a model's files
  before loading it), an archive is extracted like a downloaded one.

Downloads and extractions are cached in ``TFHUB_CACHE_DIR`` (or
tensorflow_hub's default) under tensorflow_hub's folder name for the handle,
so each library finds the other's entries. The cache may itself be a
``file://`` URL or a folder on another TensorFlow file system (the Cloud TPU
set-up keeps it on GCS); see :mod:`hub_adapter.cache` for the layout. Entries are written atomically
and locked per handle (see :mod:`hub_adapter.cache`); archives are extracted
with the checks of :mod:`hub_adapter.archives`; HTTP faults are retried as
:mod:`hub_adapter.download` describes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
import tempfile
import urllib.parse
from typing import Callable, Optional, Union

from hub_adapter import archives
from hub_adapter import cache
from hub_adapter import errors
from hub_adapter import folders
from hub_adapter import reader

ACCEPTED_FORMS = (
    "a local model folder (holding saved_model.pb)",
    "a local .tar.gz/.tgz/.tar archive of a model folder",
    "an http(s) URL of a model archive, e.g. https://tfhub.dev/google/"
    "nnlm-en-dim50/2 or https://www.kaggle.com/models/google/nnlm/"
    "frameworks/tensorFlow2/variations/en-dim50/versions/1",
    "a file:// URL of a local folder or archive",
    "a folder or .tar.gz archive on a TensorFlow file system (gs://, "
    "ram://, s3://, ...)",
)

# TensorFlow file systems read through tf.io.gfile (file:// is local).
REMOTE_SCHEMES = ("gs", "ram", "s3", "hdfs", "viewfs", "az", "oss")

_ARCHIVE_NAME = "archive.download"
_MODEL_DIR = ".hub_adapter_extract"  # Inside the temp folder; moved up after.
_HUB_PATH = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+/\d+$")

Handle = Union[str, "os.PathLike[str]"]


@dataclasses.dataclass(frozen=True)
class ParsedHandle:
  """What a handle is, before any I/O beyond looking at local paths.

  Attributes:
    handle: The handle as given (a string).
    kind: ``"folder"``, ``"archive"``, ``"url"``, ``"gcs_folder"`` or
      ``"gcs_archive"`` (the last two for any TensorFlow file system in
      :data:`REMOTE_SCHEMES`, ``gs://`` being the usual one).
    path: The local path for ``folder`` and ``archive``.
    url: The remote address for ``url`` and ``gcs_*`` (the handle itself;
      :func:`download_url` gives the address actually fetched).
  """
  handle: str
  kind: str
  path: Optional[str] = None
  url: Optional[str] = None


def _forms() -> str:
  return "; ".join(ACCEPTED_FORMS)


def _handle_error(what: str, why: str, fix: str, handle, **context
                  ) -> errors.HandleError:
  return errors.HandleError(
      errors.compose(what, why, fix, dict({"handle": handle}, **context)),
      handle=handle, **{k.replace(" ", "_"): v for k, v in context.items()})


def parse_handle(handle: Handle) -> ParsedHandle:
  """Classifies a handle (looking only at local paths, never the network).

  Args:
    handle: A string or ``os.PathLike``.

  Returns:
    The :class:`ParsedHandle`.

  Raises:
    HandleTypeError: the handle is not a string or path (a HandleError and
      a ValueError, as tensorflow_hub raises).
    HandleError: the handle is empty, names a local path that does not
      exist, or uses an unknown URL scheme.
  """
  given = handle
  if isinstance(handle, os.PathLike):
    handle = os.fspath(handle)
  if isinstance(handle, bytes):
    try:
      handle = handle.decode("utf-8")
    except UnicodeDecodeError:
      handle = None
  if not isinstance(handle, str):
    # tensorflow_hub's sentence first (and a ValueError, as there).
    raise errors.HandleTypeError(errors.compose(
        f"Expected a string, got {given!r}: a handle must be a string or "
        f"path, not {type(given).__name__}.",
        f"Accepted handles: {_forms()}.", "Pass one of those as a string.",
        {"handle": repr(given)}), handle=repr(given))
  if not handle.strip() or "\x00" in handle:
    raise _handle_error(
        f"Handle {handle!r} is empty or holds a NUL character.",
        f"Accepted handles: {_forms()}.", "Pass one of those.", handle)
  lowered = handle.lower()
  try:
    parts = urllib.parse.urlsplit(handle)
  except ValueError as e:
    raise _handle_error(f"Handle {handle!r} is a malformed URL.", f"{e}.",
                        f"Pass one of: {_forms()}.", handle) from e
  if lowered.startswith(("http://", "https://")):
    if not parts.netloc:
      raise _handle_error(f"URL {handle!r} has no host.",
                          f"Accepted handles: {_forms()}.",
                          "Write the URL in full, e.g. https://host/path.",
                          handle)
    return ParsedHandle(handle, "url", url=handle)
  if lowered.split("://", 1)[0] in REMOTE_SCHEMES and "://" in lowered:
    kind = "gcs_archive" if archives.is_archive_name(
        handle.split("?")[0]) else "gcs_folder"
    return ParsedHandle(handle, kind, url=handle)
  path = handle
  if lowered.startswith("file://"):
    path = urllib.parse.unquote(parts.path)
  elif re.match(r"^[a-z][a-z0-9+.-]*://", lowered):
    raise _handle_error(
        f"Handle {handle!r} uses an unsupported URL scheme.",
        f"Accepted handles: {_forms()}.",
        "Download the model yourself and pass its local path, or use an "
        "http(s) URL.", handle)
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.isdir(path):
    return ParsedHandle(handle, "folder", path=path)
  if os.path.isfile(path):
    if archives.is_archive_name(path):
      return ParsedHandle(handle, "archive", path=path)
    raise _handle_error(
        f"Handle {handle!r} is a file but not a model archive.",
        "A model is a folder holding saved_model.pb, or a .tar.gz/.tgz/.tar "
        "archive of one.",
        "Pass the model folder (for a saved_model.pb, the folder holding "
        "it), or an archive whose name ends in .tar.gz, .tgz or .tar.",
        handle, path=path)
  hint = "" if os.path.isabs(handle) else model_page_hint(handle)
  raise _handle_error(
      f"Model handle {handle!r} does not exist.",
      f"No file or folder {path!r} exists, and the handle is not a URL." + hint,
      f"Pass one of: {_forms()}.", handle, path=path)


# Kaggle's model frameworks, as they appear (case aside) in Kaggle handles
# owner/model/framework/variation/version.
KAGGLE_FRAMEWORKS = frozenset({
    "tensorflow1", "tensorflow2", "tflite", "tfjs", "coral", "keras",
    "pytorch", "jax", "flax", "transformers", "gguf", "scikitlearn", "other",
})


def kaggle_url(handle: str) -> Optional[str]:
  """The model URL for a Kaggle handle, or None if it is not one.

  ``owner/model/framework/variation/version`` (the form Kaggle shows and
  kagglehub takes, e.g. ``google/nnlm/tensorFlow2/en-dim50/1``) becomes
  ``https://www.kaggle.com/models/owner/model/frameworks/framework/
  variations/variation/versions/version``, the form tensorflow_hub fetches
  with ``?tf-hub-format=compressed`` appended. Without the version the
  result ends in ``versions/`` and is not loadable: a version is needed.

  Args:
    handle: A string that is not a local path or URL.

  Returns:
    The URL, or None.
  """
  parts = handle.strip("/").split("/")
  if len(parts) not in (4, 5) or parts[2].lower() not in KAGGLE_FRAMEWORKS:
    return None
  if not all(re.match(r"^[A-Za-z0-9_.-]+$", p) for p in parts):
    return None
  owner, model, framework, variation = parts[:4]
  version = parts[4] if len(parts) == 5 else ""
  return (f"https://www.kaggle.com/models/{owner}/{model}/frameworks/"
          f"{framework}/variations/{variation}/versions/{version}")


def model_page_hint(handle: str) -> str:
  """A sentence telling which URL a bare model path stands for, or "".

  tensorflow_hub (like hub_adapter) takes a string without a scheme as a
  local path; model handles without ``https://`` are a common slip.

  Args:
    handle: A relative path that does not exist.

  Returns:
    The hint, starting with a space, or "".
  """
  lowered = handle.lower()
  if lowered.startswith(("tfhub.dev/", "www.kaggle.com/", "kaggle.com/",
                         "hub.tensorflow.google.cn/")):
    return (f" It looks like a model URL without its scheme; write it as "
            f"https://{handle}.")
  url = kaggle_url(handle)
  if url is not None:
    if url.endswith("/versions/"):
      return (" It looks like a Kaggle model handle (owner/model/framework/"
              "variation/version) without its version; its URL is "
              f"{url}N, with N the version number (see the model's page on "
              "kaggle.com).")
    return (" It looks like a Kaggle model handle (owner/model/framework/"
            f"variation/version); the URL for it is {url}.")
  if _HUB_PATH.match(handle):
    return (f" It looks like a tfhub.dev path; the handle for that is "
            f"https://tfhub.dev/{handle}.")
  return ""


def _hub_modules():
  from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
  import_tensorflow_hub()
  from tensorflow_hub import compressed_module_resolver  # pylint: disable=g-import-not-at-top
  from tensorflow_hub import resolver  # pylint: disable=g-import-not-at-top
  return resolver, compressed_module_resolver


def download_url(handle: str) -> str:
  """The URL tensorflow_hub would fetch for an http(s) handle.

  tensorflow_hub's ``HttpCompressedFileResolver`` does the work: it appends
  ``tf-hub-format=compressed`` to the query (servers like tfhub.dev and
  Kaggle answer with the model's .tar.gz), except for
  ``https://hub.tensorflow.google.cn/`` handles, which it maps to their GCS
  mirror.

  Args:
    handle: An http(s) URL.

  Returns:
    The URL to download.
  """
  _, compressed = _hub_modules()
  china = getattr(compressed, "_HUB_TF_GOOGLE_CN", None)
  template = getattr(compressed, "_GCS_GOOGLE_CN_TEMPLATE", None)
  if china and template and handle.startswith(china):
    return template % handle[len(china):]
  return compressed.HttpCompressedFileResolver()._append_compressed_format_query(  # pylint: disable=protected-access
      handle)


def _hub_setting(env_var: str, flag_name: str) -> str:
  """A tensorflow_hub setting, read as tensorflow_hub reads it.

  tensorflow_hub reads the environment variable, else its absl flag. The
  flag exists only once tensorflow_hub is imported, so until then the
  variable is the whole answer; this keeps the ~130 ms import of
  tensorflow_hub off the path of a cache hit.
  """
  if "tensorflow_hub" in sys.modules:
    resolver, _ = _hub_modules()
    return resolver.get_env_setting(env_var, flag_name) or ""
  return os.environ.get(env_var, "")


def cache_dir() -> str:
  """The cache folder: tensorflow_hub's choice (``TFHUB_CACHE_DIR``, the
  ``--tfhub_cache_dir`` flag, else ``<tmp>/tfhub_modules``)."""
  folder = _hub_setting("TFHUB_CACHE_DIR", "tfhub_cache_dir") or os.path.join(
      tempfile.gettempdir(), "tfhub_modules")
  local = cache.local_path(folder)
  if local is None:
    return folder  # gs://, ram://, ...: read and written with tf.io.gfile.
  return os.path.abspath(os.path.expanduser(local))


def local_cache_dir() -> str:
  """Where local copies of remote folders go: the cache folder when it is
  local, else tensorflow_hub's default ``<tmp>/tfhub_modules``."""
  folder = cache_dir()
  if "://" in folder:
    return os.path.join(tempfile.gettempdir(), "tfhub_modules")
  return folder


def cache_key(handle: str) -> str:
  """tensorflow_hub's cache folder name for a remote handle: sha1 of it."""
  return hashlib.sha1(handle.encode("utf8")).hexdigest()


def _archive_key(path: str) -> str:
  # Keyed by path and stamp: a changed archive gets a fresh entry.
  st = os.stat(path)
  return hashlib.sha1(
      f"hub_adapter-archive:{os.path.realpath(path)}:{st.st_size}:"
      f"{st.st_mtime_ns}".encode("utf8")).hexdigest()


def _has_saved_model(folder: str) -> bool:
  return any(os.path.isfile(os.path.join(folder, name))
             for name in (reader.SAVED_MODEL_PB, reader.SAVED_MODEL_PBTXT))


def model_root(folder: str) -> Optional[str]:
  """The folder itself if it holds saved_model.pb, else its only subfolder
  holding one (archives made with a top-level folder), else None."""
  if _has_saved_model(folder):
    return folder
  try:
    names = os.listdir(folder)
  except OSError:
    return None
  if len(names) == 1 and os.path.isdir(os.path.join(folder, names[0])) and \
      _has_saved_model(os.path.join(folder, names[0])):
    return os.path.join(folder, names[0])
  return None


def check_model_folder(folder: str, handle: Optional[str]) -> str:
  """Checks that a local folder is a model folder; returns it.

  Raises:
    HandleError: the folder is missing or empty.
    ModelFormatError: it holds no saved_model.pb/.pbtxt (the message lists
      what it holds).
  """
  folders.check_folder_exists(folder, handle)
  root = model_root(folder)
  if root is None:
    # tensorflow_hub's sentence first.
    raise errors.ModelFormatError(errors.compose(
        "Trying to load a model of incompatible/unknown type. "
        f"'{folder}' contains neither 'saved_model.pb' nor "
        f"'saved_model.pbtxt': {handle or folder!r} is not a model.",
        f"Found: {folders.listing(folder)}.",
        "Point the handle at the folder holding saved_model.pb (TF1 Hub "
        "modules also have tfhub_module.pb there).",
        {"handle": handle, "folder": folder}), handle=handle, path=folder)
  return root


def _trust_existing(entry: str) -> bool:
  """Whether an unmarked entry (tensorflow_hub's) is whole enough to use."""
  # pylint: disable=g-import-not-at-top
  from hub_adapter import integrity
  from hub_adapter import reader
  # pylint: enable=g-import-not-at-top
  root = model_root(entry)
  if root is None:
    return False
  info = reader.inspect_folder(root)
  integrity.check_folder(info, entry)
  return True


def _populate_from_file(archive: str, handle: str, source: str
                        ) -> Callable[[str], None]:
  def populate(tmp: str) -> None:
    target = os.path.join(tmp, _MODEL_DIR)
    os.mkdir(target)
    archives.extract(archive, target, source=source)
    _check_extracted(target, handle)
    _flatten(tmp, target)
  return populate


def _check_extracted(target: str, handle: str) -> None:
  if not os.listdir(target):
    raise errors.ArchiveError(errors.compose(
        f"The archive of {handle!r} is empty.",
        "It holds no files, so there is no model in it.",
        "Check the handle; download or build the archive again."),
        handle=handle)
  if model_root(target) is None:
    raise errors.ModelFormatError(errors.compose(
        f"The archive of {handle!r} does not hold a model: no "
        "saved_model.pb or saved_model.pbtxt at its top level.",
        f"It holds: {folders.listing(target)}.",
        "Archive the contents of the model folder (tar -C MODEL_DIR -czf "
        "model.tar.gz .).", {"handle": handle}), handle=handle)


def _flatten(tmp: str, target: str) -> None:
  """Moves the extracted files from tmp/model up into tmp."""
  for name in os.listdir(target):
    os.rename(os.path.join(target, name), os.path.join(tmp, name))
  os.rmdir(target)


def _populate_from_url(handle: str, progress: bool) -> Callable[[str], None]:
  def populate(tmp: str) -> None:
    # Imported here: http.client and ssl cost a local-folder load ~15 ms.
    from hub_adapter import download  # pylint: disable=g-import-not-at-top
    url = download_url(handle)
    archive = os.path.join(tmp, _ARCHIVE_NAME)
    context = None
    try:
      _, compressed = _hub_modules()
      context = compressed.HttpCompressedFileResolver()._context  # pylint: disable=protected-access
    except (ImportError, AttributeError):
      context = None
    download.download(url, archive, handle=handle,
                      progress=bool(progress),
                      context=context)
    if progress:
      sys.stderr.write(f"Extracting {url}\n")
    target = os.path.join(tmp, _MODEL_DIR)
    os.mkdir(target)
    try:
      archives.extract(archive, target, source=url)
    except errors.ArchiveError as e:
      raise errors.ArchiveError(
          e.message + f"\n  handle: {handle}\n  url: {url}",
          **dict(e.context, handle=handle, url=url)) from e
    os.unlink(archive)
    _check_extracted(target, handle)
    _flatten(tmp, target)
  return populate


def _populate_from_gcs(handle: str) -> Callable[[str], None]:
  def populate(tmp: str) -> None:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    archive = os.path.join(tmp, _ARCHIVE_NAME)
    try:
      tf.io.gfile.copy(handle, archive, overwrite=True)
    except tf.errors.OpError as e:
      raise _handle_error(f"Cannot read {handle}.", str(e),
                          "Check the path (and your credentials for gs://).",
                          handle) from e
    _populate_from_file(archive, handle, handle)(tmp)
    os.unlink(archive)  # The entry holds the model's files only.
  return populate


_COPY_KEY_FILES = frozenset({reader.SAVED_MODEL_PB, reader.MODULE_DEF_FILE,
                             "fingerprint.pb", "variables/variables.index"})


def _local_copy(remote: str, handle: str) -> str:
  """A local copy of a model folder on another TensorFlow file system.

  The copy is a cache entry of :func:`local_cache_dir` keyed by the folder,
  its file listing (names and sizes) and the bytes of its metadata files,
  so a changed folder is copied again.

  Args:
    remote: The folder (``gs://...``, ``ram://...``, ...).
    handle: The handle, for messages.

  Returns:
    The local model folder.

  Raises:
    HandleError: the folder cannot be read or does not exist.
    CacheError: the local cache is unwritable.
    ModelFormatError: the folder does not hold a model.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    if not tf.io.gfile.isdir(remote):
      raise _handle_error(
          f"Model folder {handle!r} does not exist.",
          f"tf.io.gfile finds no folder {remote!r}.",
          "Check the path (and your credentials for gs://).", handle)
    listing = sorted(cache.remote_files(remote).items())
    digest = hashlib.sha1(
        f"hub_adapter-copy:{remote}:{listing}".encode("utf8"))
    # Sizes alone miss a model saved again with new values; its small
    # metadata files differ (variables.index holds every tensor's CRC32C),
    # so their bytes go into the key too.
    for name, _ in listing:
      if name in _COPY_KEY_FILES:
        with tf.io.gfile.GFile(f"{remote.rstrip('/')}/{name}", "rb") as f:
          digest.update(f.read())
  except tf.errors.OpError as e:
    raise _handle_error(f"Cannot read {remote}.", str(e),
                        "Check the path and your credentials.", handle) from e
  key = digest.hexdigest()

  def populate(tmp: str) -> None:
    try:
      cache.copy_tree(remote, tmp)
    except tf.errors.OpError as e:
      raise _handle_error(f"Cannot read {remote}.", str(e),
                          "Check the path and your credentials.",
                          handle) from e
    if model_root(tmp) is None:
      check_model_folder(tmp, handle)

  entry = cache.get_or_create(local_cache_dir(), key, populate, handle=handle,
                              marker_extra={"copy_of": remote})
  return model_root(entry) or check_model_folder(entry, handle)


def resolve(handle: Handle, *, progress: Optional[bool] = None) -> str:
  """Returns the local model folder for a handle, fetching it if needed.

  Args:
    handle: See :data:`ACCEPTED_FORMS`.
    progress: Print download progress on stderr (default: when
      ``TFHUB_DOWNLOAD_PROGRESS`` is set, like tensorflow_hub).

  Returns:
    An absolute local folder holding saved_model.pb (a ``gs://`` folder
    for ``TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED``).

  Raises:
    HandleError: the handle is malformed or missing, or its download fails
      (the message names the URL and cause).
    ArchiveError: the archive is unsafe, too large or corrupt.
    CacheError: the cache folder is unwritable or full, or locked too long.
    ModelFormatError: the folder or archive does not hold a model.
  """
  parsed = parse_handle(handle)
  if progress is None:
    progress = bool(os.environ.get("TFHUB_DOWNLOAD_PROGRESS"))
  if parsed.kind == "folder":
    return check_model_folder(parsed.path, parsed.handle)
  if parsed.kind == "gcs_folder":
    return _local_copy(parsed.handle, parsed.handle)
  if parsed.kind == "url" and _uncompressed_requested():
    return _resolve_uncompressed(parsed.handle)
  folder = cache_dir()
  if parsed.kind == "archive":
    key = _archive_key(parsed.path)
    populate = _populate_from_file(parsed.path, parsed.handle, parsed.path)
    extra = {"archive": parsed.path}
  elif parsed.kind == "gcs_archive":
    key = cache_key(parsed.handle)
    populate = _populate_from_gcs(parsed.handle)
    extra = {"url": parsed.handle}
  else:
    key = cache_key(parsed.handle)
    populate = _populate_from_url(parsed.handle, progress)
    extra = {"url": parsed.handle}
  entry = cache.get_or_create(folder, key, populate, handle=parsed.handle,
                              adopt=_trust_existing, marker_extra=extra)
  if "://" in entry:  # A cache on gs://, ram://, ...
    return _local_copy(entry, parsed.handle)
  root = model_root(entry)
  if root is None:  # Cannot happen for our entries; guard adopted ones.
    return check_model_folder(entry, parsed.handle)
  return root


def _uncompressed_requested() -> bool:
  return _hub_setting("TFHUB_MODEL_LOAD_FORMAT",
                      "tfhub_model_load_format") == "UNCOMPRESSED"


def _resolve_uncompressed(handle: str) -> str:
  from tensorflow_hub import uncompressed_module_resolver  # pylint: disable=g-import-not-at-top
  try:
    return uncompressed_module_resolver.HttpUncompressedFileResolver()(handle)
  except Exception as e:  # pylint: disable=broad-except
    raise _handle_error(
        f"Cannot resolve {handle!r} in uncompressed mode.",
        f"{type(e).__name__}: {e}",
        "Unset TFHUB_MODEL_LOAD_FORMAT to download the compressed archive.",
        handle) from e


def fetch(handle: Handle, progress: bool = True) -> str:
  """Downloads a handle into the cache (``hub-adapter fetch``); returns the
  local folder. The same as :func:`resolve`, with progress on stderr by
  default."""
  return resolve(handle, progress=progress)


__all__ = ["resolve", "fetch", "parse_handle", "ParsedHandle", "download_url",
           "kaggle_url", "model_page_hint",
           "cache_dir", "local_cache_dir", "cache_key", "REMOTE_SCHEMES", "check_model_folder", "model_root",
           "ACCEPTED_FORMS"]
