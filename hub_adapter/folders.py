"""Small file-system helpers shared by the handle resolver and the reader.

:func:`check_folder_exists` turns a missing, non-folder or empty model folder
into a :class:`~hub_adapter.errors.HandleError`; :func:`listing` names what a
folder holds, for error messages. Nothing here reads a model file.
"""
from __future__ import annotations

import os
from typing import Optional

from hub_adapter import errors


def listing(path: str, limit: int = 12) -> str:
  """Names what a folder holds, for error messages.

  Args:
    path: The folder.
    limit: How many names to show before "and N more".

  Returns:
    The names, comma-separated (folders end with ``/``), or a note when
    the folder is empty or cannot be listed.
  """
  try:
    names = sorted(os.listdir(path))
  except OSError as e:
    return f"(cannot list: {e.strerror or e})"
  shown = [n + ("/" if os.path.isdir(os.path.join(path, n)) else "")
           for n in names[:limit]]
  more = f" and {len(names) - limit} more" if len(names) > limit else ""
  return (", ".join(shown) + more) if shown else "(nothing)"


def check_folder_exists(path: str, handle: Optional[str] = None) -> None:
  """Raises HandleError unless ``path`` is a non-empty folder.

  Args:
    path: The folder.
    handle: The handle it came from, for the message.

  Raises:
    HandleError: the folder does not exist, is a file, or is empty.
  """
  shown = handle if handle is not None else path
  if not os.path.exists(path):
    raise errors.HandleError(errors.compose(
        f"Model folder {shown!r} does not exist.",
        "hub_adapter resolves a handle to a local folder holding "
        "saved_model.pb, and that folder is missing.",
        "Pass an existing model folder, a .tar.gz archive, or a URL; check "
        "the path for typos.", {"handle": handle, "folder": path}),
        handle=handle, path=path)
  if not os.path.isdir(path):
    raise errors.HandleError(errors.compose(
        f"Handle {shown!r} is a file, not a model folder.",
        "A model is a folder holding saved_model.pb (and tfhub_module.pb for "
        "the TF1 Hub format).",
        "Pass the folder, or a .tar.gz/.tgz archive of it (which "
        "hub_adapter.resolve extracts into the cache).",
        {"handle": handle, "path": path}), handle=handle, path=path)
  try:
    empty = not os.listdir(path)
  except OSError as e:
    raise errors.HandleError(errors.compose(
        f"Cannot list model folder {shown!r}.",
        f"{type(e).__name__}: {e.strerror or e}",
        "Check the folder's permissions.", {"handle": handle, "folder": path}),
        handle=handle, path=path) from e
  if empty:
    raise errors.HandleError(errors.compose(
        f"Model folder {shown!r} is empty.",
        "The folder holds no files, so there is no model to load (an "
        "interrupted download or extraction leaves folders like this).",
        "Fetch or extract the model again; for a cached download, delete "
        "the cache entry and retry.", {"handle": handle, "folder": path}),
        handle=handle, path=path)


__all__ = ["check_folder_exists", "listing"]
