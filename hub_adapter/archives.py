"""Safe extraction of model archives (``.tar.gz``, ``.tgz``, ``.tar``).

A model archive from the internet is untrusted input. :func:`extract` takes
regular files and folders only and refuses, with an
:class:`~hub_adapter.errors.ArchiveError` naming the entry:

- names that are absolute or climb out of the target with ``..``;
- symbolic and hard links (a model never needs them, and a link is the
  classic way to make a later entry write outside the target);
- device files, FIFOs and any other special member;
- archives with more members or more bytes than the configured bounds
  (``HUB_ADAPTER_MAX_ARCHIVE_MEMBERS``, ``HUB_ADAPTER_MAX_ARCHIVE_BYTES``),
  which stops decompression bombs before the disk fills.

Every member that passes also goes through ``tarfile``'s own ``data``
extraction filter (PEP 706; Python >= 3.11.4, hence ``python_requires``), which resolves the final
path through anything already on disk and strips ownership, and ``tarfile``
writes it. What stays here: the two bounds (``tarfile`` has none), the
refusal of links that the ``data`` filter would allow inside the target,
and messages that name the entry and say why in the user's terms.

Entries may be written with or without a leading ``./`` (tfhub.dev archives
have it, the original ``half_plus_two_v1.tar.gz`` does not). File modes from
the archive are ignored: files get 0644, folders 0755 (less what the umask
takes away, so a private umask keeps the cache private), owned by the caller.
"""
from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zlib
from typing import BinaryIO, Optional, Union

from absl import logging

from hub_adapter import cache
from hub_adapter import errors

DEFAULT_MAX_BYTES = 20 * 1024 ** 3
"""Default bound on the total extracted bytes (20 GiB)."""

DEFAULT_MAX_MEMBERS = 100_000
"""Default bound on the number of archive members."""

MAX_BYTES_ENV = "HUB_ADAPTER_MAX_ARCHIVE_BYTES"
MAX_MEMBERS_ENV = "HUB_ADAPTER_MAX_ARCHIVE_MEMBERS"


def _env_int(name: str, default: int) -> int:
  raw = os.environ.get(name, "").strip()
  if not raw:
    return default
  try:
    value = int(raw)
  except ValueError:
    raise errors.ArchiveError(errors.compose(
        f"Environment variable {name}={raw!r} is not a whole number.",
        "It bounds archive extraction.",
        f"Set {name} to a positive integer, or unset it (default {default})."),
        variable=name) from None
  if value <= 0:
    raise errors.ArchiveError(errors.compose(
        f"Environment variable {name}={raw!r} must be positive.",
        "It bounds archive extraction.",
        f"Set {name} to a positive integer, or unset it (default {default})."),
        variable=name)
  return value


def limits(max_bytes: Optional[int] = None,
           max_members: Optional[int] = None) -> tuple[int, int]:
  """The (max bytes, max members) in force: arguments, then env, then default."""
  return (max_bytes if max_bytes is not None
          else _env_int(MAX_BYTES_ENV, DEFAULT_MAX_BYTES),
          max_members if max_members is not None
          else _env_int(MAX_MEMBERS_ENV, DEFAULT_MAX_MEMBERS))


def _refuse(source: str, entry: Optional[str], why: str,
            fix: str = "", verb: str = "Refusing") -> errors.ArchiveError:
  what = (f"{verb} archive entry {entry!r} of {source!r}." if entry
          else f"{verb} archive {source!r}.")
  return errors.ArchiveError(
      errors.compose(what, why, fix or (
          "Only use archives from sources you trust; a model archive holds "
          "regular files and folders with relative names only."),
          {"archive": source, "entry": entry}),
      archive=source, entry=entry)


def safe_member_path(name: str) -> Optional[str]:
  """Normalises an archive member name, or returns None when it is unsafe.

  ``./a/b`` and ``a/b`` both give ``a/b``; ``.`` and ``./`` give ``""`` (the
  target itself). Absolute names, Windows drive names, backslashes and any
  ``..`` component are unsafe.

  Args:
    name: The member name as stored.

  Returns:
    The relative POSIX path, or None.
  """
  if not name or "\x00" in name or "\\" in name:
    return None
  if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
    return None
  parts = [p for p in name.split("/") if p not in ("", ".")]
  if any(p == ".." for p in parts):
    return None
  return posixpath.join(*parts) if parts else ""


def _kind(member: tarfile.TarInfo) -> str:
  if member.issym():
    return f"a symbolic link to {member.linkname!r}"
  if member.islnk():
    return f"a hard link to {member.linkname!r}"
  if member.ischr() or member.isblk():
    return "a device file"
  if member.isfifo():
    return "a FIFO"
  return f"a special member (tar type {member.type!r})"


def extract(archive: Union[str, os.PathLike, BinaryIO], target: str, *,
            source: Optional[str] = None, max_bytes: Optional[int] = None,
            max_members: Optional[int] = None) -> int:
  """Extracts a tar archive (optionally gzip/bz2/xz compressed) safely.

  The target must be a fresh folder of the caller's (a temporary folder in
  the cache): on error it is left partly filled and the caller removes it.

  Args:
    archive: A path, or a binary file object positioned at the start.
    target: An existing, empty folder to extract into.
    source: How to name the archive in errors (handle or URL); defaults to
      the path.
    max_bytes: Bound on the total size of the extracted files (default: env
      ``HUB_ADAPTER_MAX_ARCHIVE_BYTES`` or 20 GiB).
    max_members: Bound on the number of members (default: env
      ``HUB_ADAPTER_MAX_ARCHIVE_MEMBERS`` or 100000).

  Returns:
    The number of bytes written.

  Raises:
    ArchiveError: an entry is unsafe, a bound is exceeded, or the archive is
      truncated or not a tar archive.
    OSError: writing into ``target`` failed (the caller maps full disks and
      permissions to CacheError).
  """
  max_bytes, max_members = limits(max_bytes, max_members)
  if source is None:
    source = os.fspath(archive) if isinstance(archive, (str, os.PathLike)) \
        else getattr(archive, "name", "<archive>")
  target = os.path.abspath(target)
  try:
    if isinstance(archive, (str, os.PathLike)):
      tar = tarfile.open(os.fspath(archive), mode="r:*")
    else:
      tar = tarfile.open(fileobj=archive, mode="r:*")
  except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
    if isinstance(e, OSError) and not isinstance(e, tarfile.TarError) and \
        e.errno is not None:
      raise
    reason = " ".join(str(e).split())  # tarfile's reasons span lines.
    raise _refuse(source, None, f"It is not a readable tar archive "
                  f"({type(e).__name__}: {reason}).",
                  "Check that the handle points at a .tar.gz of a model "
                  "folder and that the download completed.",
                  "Cannot extract") from e
  written = 0
  members = 0
  try:
    with tar:
      while True:
        try:
          member = tar.next()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
          if isinstance(e, OSError) and e.errno is not None:
            raise
          raise _refuse(source, None, "The archive is truncated or corrupt "
                        f"after {members} members ({type(e).__name__}: {e}).",
                        "Download it again; if it keeps failing, the source "
                        "file itself is damaged.", "Cannot extract") from e
        if member is None:
          break
        members += 1
        if members > max_members:
          raise _refuse(source, member.name,
                        f"The archive has more than {max_members} members.",
                        f"Raise the bound with {MAX_MEMBERS_ENV} (or "
                        "max_members=) if you trust this archive.")
        rel = safe_member_path(member.name)
        if rel is None:
          raise _refuse(source, member.name,
                        "Its name is absolute or climbs out of the target "
                        "folder with '..'.")
        dest = os.path.join(target, *rel.split("/")) if rel else target
        if not (member.isdir() or member.isfile()):
          raise _refuse(source, member.name,
                        f"It is {_kind(member)}; only regular files and "
                        "folders are extracted.")
        if member.isfile() and not rel:
          raise _refuse(source, member.name, "A file cannot replace the "
                        "target folder itself.")
        if member.isfile() and written + member.size > max_bytes:
          raise _refuse(source, member.name,
                        f"Extracting it would exceed {max_bytes} bytes in "
                        f"total (the archive declares {member.size} bytes "
                        f"for it after {written} bytes so far).",
                        f"Raise the bound with {MAX_BYTES_ENV} (or "
                        "max_bytes=) if you trust this archive.")
        if member.isdir():
          _data_filter(member, target, source)
          os.makedirs(dest, mode=0o755, exist_ok=True)
          continue
        os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
        if os.path.lexists(dest) and not stat.S_ISREG(os.lstat(dest).st_mode):
          raise _refuse(source, member.name, "It would replace a folder or "
                        "special file written by an earlier entry.")
        try:
          # The member already passed the data filter (above): tell
          # tarfile not to filter it again where it knows filters.
          tar.extract(_data_filter(member, target, source), target,
                      set_attrs=True, filter="fully_trusted")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
          if isinstance(e, errors.ArchiveError) or (
              isinstance(e, OSError) and e.errno is not None):
            raise
          raise _refuse(source, member.name, "Its data is truncated or "
                        f"corrupt ({type(e).__name__}: {e}).",
                        "Download the archive again.", "Cannot extract"
                        ) from e
        written += member.size
  except errors.ArchiveError:
    raise
  except (tarfile.TarError, EOFError, zlib.error) as e:
    raise _refuse(source, None, f"The archive is truncated or corrupt "
                  f"({type(e).__name__}: {e}).",
                  "Download it again; if it keeps failing, the source file "
                  "itself is damaged.", "Cannot extract") from e
  logging.debug("hub_adapter: extracted %d members (%d bytes) of %s",
                members, written, source)
  return written


def _data_filter(member: tarfile.TarInfo, target: str,
                 source: str) -> tarfile.TarInfo:
  """``tarfile``'s ``data`` filter, then the modes and times this module
  promises (files 0644, folders 0755, both less the umask; extraction time
  as mtime)."""
  try:
    member = tarfile.data_filter(member, target)
  except tarfile.FilterError as e:
    raise _refuse(source, member.name, "tarfile's data filter refuses it "
                  f"({type(e).__name__}: {e}).") from e
  mask = cache.umask()
  return member.replace(mode=(0o755 if member.isdir() else 0o644) & ~mask,
                        uid=None, gid=None, uname=None, gname=None,
                        mtime=None, deep=False)


def is_archive_name(name: str) -> bool:
  """True for names ending in .tar.gz, .tgz, .tar, .tar.bz2 or .tar.xz."""
  return name.lower().endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2",
                                ".tar.xz"))


__all__ = ["extract", "limits", "safe_member_path", "is_archive_name",
           "DEFAULT_MAX_BYTES", "DEFAULT_MAX_MEMBERS", "MAX_BYTES_ENV",
           "MAX_MEMBERS_ENV"]
