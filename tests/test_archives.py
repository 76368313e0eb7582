"""Safe extraction: hostile archives are refused, naming the entry; nothing
is left in the cache after a refusal."""
import importlib
import io
import os
import tarfile

import pytest

from hub_adapter import archives
from hub_adapter import errors

resolve_lib = importlib.import_module("hub_adapter.handles")


def _tar(path, members, prefix="./"):
  """Writes a .tar.gz from (name, kind, payload) triples."""
  with tarfile.open(path, "w:gz") as tar:
    for name, kind, payload in members:
      info = tarfile.TarInfo(name if name.startswith("/") else prefix + name
                             if prefix and kind != "raw" else name)
      if kind == "file":
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
        continue
      info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                   "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE,
                   "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}[kind]
      if kind in ("symlink", "hardlink"):
        info.linkname = payload
      tar.addfile(info)
  return str(path)


def _model_members(shared_fixtures, name="half_plus_two_v1"):
  root = shared_fixtures.path(name)
  members = []
  for folder, dirs, files in os.walk(root):
    rel = os.path.relpath(folder, root)
    if rel != ".":
      members.append((rel, "dir", None))
    for f in files:
      with open(os.path.join(folder, f), "rb") as src:
        members.append((os.path.normpath(os.path.join(rel, f)), "file",
                        src.read()))
  return members


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
  folder = tmp_path / "cache"
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(folder))
  return folder


def _cache_is_empty(folder):
  return not folder.exists() or os.listdir(folder) == []


@pytest.mark.parametrize("entry,kind,payload,match", [
    ("../evil.txt", "file", b"x", "climbs out"),
    ("variables/../../evil.txt", "file", b"x", "climbs out"),
    ("/tmp/hub_adapter_evil.txt", "file", b"x", "absolute"),
    ("assets/link", "symlink", "/etc/passwd", "symbolic link to '/etc/passwd'"),
    ("assets/inner", "symlink", "tokens.txt", "symbolic link"),
    ("assets/hard", "hardlink", "saved_model.pb", "hard link"),
    ("assets/fifo", "fifo", None, "a FIFO"),
    ("assets/tty", "chr", None, "a device file"),
    ("assets/disk", "blk", None, "a device file"),
])
def test_hostile_entries_are_refused(shared_fixtures, tmp_path, cache_dir,
                                     entry, kind, payload, match):
  path = _tar(tmp_path / "bad.tar.gz",
              _model_members(shared_fixtures) + [(entry, kind, payload)])
  with pytest.raises(errors.ArchiveError, match=match) as e:
    resolve_lib.resolve(path)
  assert e.value.entry.endswith(entry)
  assert repr(e.value.entry) in str(e.value)
  assert _cache_is_empty(cache_dir)
  assert not os.path.exists("/tmp/hub_adapter_evil.txt")
  assert not (tmp_path / "evil.txt").exists()


def test_member_count_bound(shared_fixtures, tmp_path, cache_dir, monkeypatch):
  members = _model_members(shared_fixtures)
  path = _tar(tmp_path / "m.tar.gz", members)
  monkeypatch.setenv(archives.MAX_MEMBERS_ENV, str(len(members) - 1))
  with pytest.raises(errors.ArchiveError, match="more than") as e:
    resolve_lib.resolve(path)
  assert archives.MAX_MEMBERS_ENV in str(e.value)
  assert _cache_is_empty(cache_dir)
  monkeypatch.setenv(archives.MAX_MEMBERS_ENV, str(len(members)))
  assert os.path.isfile(os.path.join(resolve_lib.resolve(path),
                                     "saved_model.pb"))


def test_byte_bound(shared_fixtures, tmp_path, cache_dir, monkeypatch):
  path = _tar(tmp_path / "m.tar.gz", _model_members(shared_fixtures) + [
      ("assets/big.bin", "file", b"\0" * 50_000)])
  monkeypatch.setenv(archives.MAX_BYTES_ENV, "40000")
  with pytest.raises(errors.ArchiveError, match="exceed 40000 bytes") as e:
    resolve_lib.resolve(path)
  assert e.value.entry == "./assets/big.bin"
  assert _cache_is_empty(cache_dir)
  # Arguments win over the environment.
  target = tmp_path / "out"
  target.mkdir()
  assert archives.extract(path, str(target), max_bytes=10**6) > 50_000


def test_zip_bomb_stops_at_the_bound(tmp_path):
  # 20 MB of zeros compress to ~20 KB; the bound stops it long before.
  path = _tar(tmp_path / "bomb.tar.gz",
              [("saved_model.pb", "file", b"\0" * 20_000_000)])
  assert os.path.getsize(path) < 100_000
  target = tmp_path / "out"
  target.mkdir()
  with pytest.raises(errors.ArchiveError, match="exceed 1000000 bytes"):
    archives.extract(path, str(target), max_bytes=1_000_000)
  assert os.listdir(target) == []


@pytest.mark.parametrize("prefix", ["./", ""])
def test_archives_with_and_without_dot_prefix(shared_fixtures, tmp_path,
                                              cache_dir, prefix):
  path = _tar(tmp_path / "m.tar.gz", _model_members(shared_fixtures, "tf1_text_embedding"),
              prefix=prefix)
  folder = resolve_lib.resolve(path)
  assert sorted(os.listdir(folder)) == sorted(
      ["assets", "saved_model.pb", "tfhub_module.pb", "variables"])
  with open(os.path.join(folder, "assets", "tokens.txt"), "rb") as f:
    with open(os.path.join(shared_fixtures.path("tf1_text_embedding"),
                           "assets", "tokens.txt"), "rb") as g:
      assert f.read() == g.read()
  assert oct(os.stat(os.path.join(folder, "saved_model.pb")).st_mode & 0o777
             ) == "0o644"


def test_original_hub_archive_without_prefix(shared_fixtures, tmp_path):
  with tarfile.open(shared_fixtures.archive("half_plus_two_v1")) as tar:
    assert not any(n.startswith("./") for n in tar.getnames())
  target = tmp_path / "out"
  target.mkdir()
  archives.extract(shared_fixtures.archive("half_plus_two_v1"), str(target))
  assert os.path.isfile(target / "variables" / "variables.index")


@pytest.mark.parametrize("data,match", [
    (b"this is not a tar archive at all" * 20, "not a readable tar archive"),
    (b"", "not a readable tar archive"),
])
def test_not_an_archive(tmp_path, cache_dir, data, match):
  path = tmp_path / "x.tar.gz"
  path.write_bytes(data)
  with pytest.raises(errors.ArchiveError, match=match):
    resolve_lib.resolve(str(path))
  assert _cache_is_empty(cache_dir)


def test_truncated_archive(shared_fixtures, tmp_path, cache_dir):
  with open(shared_fixtures.archive("tf2_keras_savedmodel"), "rb") as f:
    data = f.read()
  path = tmp_path / "cut.tar.gz"
  path.write_bytes(data[: len(data) // 2])
  with pytest.raises(errors.ArchiveError, match="truncated or corrupt") as e:
    resolve_lib.resolve(str(path))
  assert "Cannot extract" in str(e.value)
  assert _cache_is_empty(cache_dir)


def test_archive_without_a_model(tmp_path, cache_dir):
  path = _tar(tmp_path / "m.tar.gz", [("README.md", "file", b"hello"),
                                      ("data", "dir", None)])
  with pytest.raises(errors.ModelFormatError,
                     match="does not hold a model") as e:
    resolve_lib.resolve(path)
  assert "README.md, data/" in str(e.value)
  assert _cache_is_empty(cache_dir)
  empty = _tar(tmp_path / "e.tar.gz", [])
  with pytest.raises(errors.ArchiveError, match="is empty"):
    resolve_lib.resolve(empty)
  assert _cache_is_empty(cache_dir)


def test_archive_with_top_level_folder(shared_fixtures, tmp_path, cache_dir):
  members = [("model", "dir", None)] + [
      ("model/" + n, k, p) for n, k, p in _model_members(shared_fixtures)]
  folder = resolve_lib.resolve(_tar(tmp_path / "m.tgz", members))
  assert folder.endswith("/model")
  assert os.path.isfile(os.path.join(folder, "tfhub_module.pb"))


def test_bad_limit_settings(tmp_path, monkeypatch):
  monkeypatch.setenv(archives.MAX_BYTES_ENV, "lots")
  with pytest.raises(errors.ArchiveError, match="not a whole number"):
    archives.limits()
  monkeypatch.setenv(archives.MAX_BYTES_ENV, "0")
  with pytest.raises(errors.ArchiveError, match="must be positive"):
    archives.limits()


@pytest.mark.parametrize("name,want", [
    ("./a/b", "a/b"), ("a/b", "a/b"), ("./", ""), (".", ""), ("a//b/./c", "a/b/c"),
    ("../a", None), ("a/../../b", None), ("a/..", None), ("/abs", None),
    ("C:/x", None), ("a\\..\\b", None), ("", None), ("a\x00b", None),
])
def test_safe_member_path(name, want):
  assert archives.safe_member_path(name) == want


def test_tarfile_data_filter_guards_what_names_cannot_show(tmp_path):
  # The names are harmless, but the target already holds a link that leads
  # out of it: tarfile's data filter resolves the real path and refuses.
  outside = tmp_path / "outside"
  outside.mkdir()
  target = tmp_path / "out"
  target.mkdir()
  os.symlink(outside, target / "assets")
  path = _tar(tmp_path / "m.tar.gz", [("saved_model.pb", "file", b"x"),
                                      ("assets/evil.txt", "file", b"x")])
  with pytest.raises(errors.ArchiveError, match="data filter refuses it") as e:
    archives.extract(path, str(target))
  assert e.value.entry == "./assets/evil.txt"
  assert "OutsideDestinationError" in str(e.value)
  assert os.listdir(outside) == []


def test_extracted_files_do_not_keep_archive_modes_or_owners(tmp_path):
  path = str(tmp_path / "m.tar")
  with tarfile.open(path, "w") as tar:
    info = tarfile.TarInfo("./bin/tool")
    info.size, info.mode, info.uid, info.gid = 3, 0o6777, 4321, 4321
    info.mtime = 1_000_000
    tar.addfile(info, io.BytesIO(b"abc"))
    folder = tarfile.TarInfo("./bin")
    folder.type, folder.mode = tarfile.DIRTYPE, 0o777
    tar.addfile(folder)
  target = tmp_path / "out"
  target.mkdir()
  assert archives.extract(path, str(target)) == 3
  st = os.stat(target / "bin" / "tool")
  assert oct(st.st_mode & 0o7777) == "0o644"
  assert st.st_uid == os.getuid() and st.st_mtime > 1_000_000
  assert oct(os.stat(target / "bin").st_mode & 0o7777) == "0o755"
