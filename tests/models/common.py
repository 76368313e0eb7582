"""Shared pieces of the test-model generator: archives, goldens, manifests.

Each half of the generator (``tf1_hub`` in the tf215 environment,
``tf2_saved_model`` in the tf221 environment) writes one *part* folder::

  PART/manifest.json          {"generated_with": ..., "fixtures": [...]}
  PART/NAME/                  the model folder
  PART/NAME.tar.gz            the folder as a tfhub.dev-style archive
  PART/goldens/NAME.npz       golden inputs and outputs

Paths in a part's manifest are relative to the part folder. The schema of a
fixture entry is described in ``tests/models/README.md``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from typing import Any, Dict, Iterable, List, Mapping, Sequence

import numpy as np

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def sha256_of(path: str) -> str:
  """Returns the hex SHA-256 of a file."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def file_listing(folder: str) -> List[Dict[str, Any]]:
  """Lists the regular files of a model folder with their sizes, sorted."""
  files = []
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      files.append({"path": os.path.relpath(path, folder).replace(os.sep, "/"),
                    "bytes": os.path.getsize(path)})
  return sorted(files, key=lambda f: f["path"])


def empty_dirs(folder: str) -> List[str]:
  """Lists a folder's empty sub-folders as ``name/`` (archive members only)."""
  return sorted(os.path.relpath(root, folder).replace(os.sep, "/") + "/"
                for root, dirs, names in os.walk(folder)
                if root != folder and not dirs and not names)


def write_archive(folder: str, archive: str, dot_prefix: bool = True) -> None:
  """Writes ``folder``'s contents as a gzipped tarball without a top folder.

  Like the archives tfhub.dev served: members are ``./saved_model.pb`` etc.
  (or ``saved_model.pb`` when ``dot_prefix`` is False, as in the original
  half_plus_two archive). Entries are sorted and their times fixed, so the
  same folder always gives the same bytes.

  Args:
    folder: the model folder.
    archive: the ``.tar.gz`` file to write.
    dot_prefix: whether member names start with ``./``.
  """
  def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info

  raw = io.BytesIO()
  with tarfile.open(fileobj=raw, mode="w") as tar:
    entries = []
    for root, dirs, names in os.walk(folder):
      dirs.sort()
      rel = os.path.relpath(root, folder)
      if rel != ".":
        entries.append(rel)
      entries.extend(os.path.normpath(os.path.join(rel, n))
                     for n in sorted(names))
    for rel in sorted(entries):
      name = ("./" + rel) if dot_prefix else rel
      tar.add(os.path.join(folder, rel), arcname=name, recursive=False,
              filter=normalise)
  import gzip  # pylint: disable=g-import-not-at-top
  with open(archive, "wb") as f:
    with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
      gz.write(raw.getvalue())


def to_golden_array(value: Any) -> np.ndarray:
  """Converts a TF/numpy value to what goldens store (unicode for strings)."""
  array = np.asarray(value)
  if array.dtype == object or array.dtype.kind == "S":
    array = np.vectorize(
        lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v),
        otypes=[str])(array) if array.size else array.astype(str)
  return array


def spec_of(key: str, array: np.ndarray) -> Dict[str, Any]:
  """The manifest's ``{key, dtype, shape}`` record of one golden array."""
  dtype = "string" if array.dtype.kind in "USO" else str(array.dtype)
  return {"dtype": dtype, "key": key, "shape": list(array.shape)}


class Goldens:
  """Collects golden arrays of one fixture and their manifest records."""

  def __init__(self) -> None:
    self.arrays: Dict[str, np.ndarray] = {}

  def record(self, prefix: str, values: Mapping[str, Any]) -> Dict[str, Any]:
    """Stores ``values`` under ``prefix/NAME`` and returns their specs."""
    specs = {}
    for name, value in values.items():
      key = f"{prefix}/{name}"
      array = to_golden_array(value)
      self.arrays[key] = array
      specs[name] = spec_of(key, array)
    return specs

  def save(self, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, **self.arrays)


def finish_fixture(part_dir: str, entry: Dict[str, Any], goldens: Goldens,
                   dot_prefix: bool = True) -> Dict[str, Any]:
  """Writes the archive and golden file of a built fixture; fills the entry.

  Args:
    part_dir: the part folder holding ``NAME/``.
    entry: the manifest entry; must have ``name``.
    goldens: the fixture's golden arrays.
    dot_prefix: passed to :func:`write_archive`.

  Returns:
    The entry, with ``path``, ``archive``, ``archive_sha256``, ``golden``,
    ``files``, ``empty_dirs_only_in_archive`` and ``tolerance`` filled in.
  """
  name = entry["name"]
  folder = os.path.join(part_dir, name)
  archive = os.path.join(part_dir, name + ".tar.gz")
  write_archive(folder, archive, dot_prefix=dot_prefix)
  golden = os.path.join("goldens", name + ".npz")
  goldens.save(os.path.join(part_dir, golden))
  entry.setdefault("tolerance", dict(TOLERANCE))
  entry.update(path=name, archive=name + ".tar.gz",
               archive_sha256=sha256_of(archive), golden=golden,
               files=file_listing(folder),
               empty_dirs_only_in_archive=empty_dirs(folder))
  return entry


def write_manifest(part_dir: str, generated_with: str,
                   fixtures: Sequence[Dict[str, Any]]) -> None:
  """Writes ``PART/manifest.json`` (fixtures sorted by name)."""
  manifest = {"manifest_version": 1, "generated_with": generated_with,
              "fixtures": sorted(fixtures, key=lambda f: f["name"])}
  with open(os.path.join(part_dir, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
    f.write("\n")


def run_fresh(args: Iterable[str], env: Mapping[str, str] | None = None) -> None:
  """Runs ``python ARGS`` in a fresh interpreter; raises if it fails.

  Goldens are recorded and verified in fresh processes so that no state of
  the building process (graphs, registered ops, Keras globals) leaks in.
  """
  full_env = dict(os.environ)
  full_env.update(env or {})
  subprocess.run([sys.executable, *args], check=True, env=full_env)
