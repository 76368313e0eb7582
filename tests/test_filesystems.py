"""TensorFlow file systems in handles and TFHUB_CACHE_DIR (``file://``,
``ram://``), tensorflow_hub's cache layout, permissions that follow the
umask, and a cache shared with tensorflow_hub in both directions."""
import importlib
import os
import stat
import tarfile
import uuid

import pytest

tf = pytest.importorskip("tensorflow")

import hub_adapter  # pylint: disable=g-import-not-at-top,wrong-import-position
from hub_adapter import cache  # pylint: disable=wrong-import-position

import http_server  # pylint: disable=wrong-import-order,wrong-import-position

resolve_lib = importlib.import_module("hub_adapter.handles")


class _Square(tf.Module):

  def __init__(self, offset=2.0):
    super().__init__()
    self.offset = tf.Variable(offset)

  @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
  def __call__(self, x):
    return x * x + self.offset


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  """A tiny TF2 SavedModel: m(x) = x * x + 2."""
  path = str(tmp_path_factory.mktemp("fs_model") / "square")
  tf.saved_model.save(_Square(), path)
  return path


@pytest.fixture(scope="module")
def model_archive(model_dir, tmp_path_factory):
  path = str(tmp_path_factory.mktemp("fs_archive") / "square.tar.gz")
  with tarfile.open(path, "w:gz") as tar:
    tar.add(model_dir, arcname=".")
  return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
  folder = tmp_path / "cache"
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(folder))
  monkeypatch.setenv("HUB_ADAPTER_HTTP_BACKOFF", "0.01")
  return folder


def _value(handle):
  return float(hub_adapter.load(handle)(tf.constant(3.0)))


def _ram(name):
  return f"ram://hub_adapter_test_{uuid.uuid4().hex}/{name}"


def _model_dir_of(archive):
  with tarfile.open(archive) as tar:
    return sorted({m.name.lstrip("./").split("/")[0] for m in tar.getmembers()
                   if m.name.lstrip("./")})


def _listing(folder):
  return cache.children(folder)


def test_file_url_of_folder_and_archive(model_dir, model_archive, cache_dir):
  assert _value("file://" + model_dir) == 11.0
  assert _value("file://" + model_archive) == 11.0
  # The archive was extracted into the (local) cache, tensorflow_hub-style.
  entry, descriptor = sorted(os.listdir(cache_dir))
  assert descriptor == entry + ".descriptor.txt"


def test_ram_folder_and_archive_handles(model_dir, model_archive, cache_dir):
  folder = _ram("square")
  cache.copy_tree(model_dir, folder)
  assert _value(folder) == 11.0
  archive = _ram("square.tar.gz")
  tf.io.gfile.copy(model_archive, archive)
  assert _value(archive) == 11.0
  # A changed remote folder is copied again, not served stale.
  tf.io.gfile.rmtree(folder)
  tf.saved_model.save(_Square(offset=5.0), folder)
  assert _value(folder) == 14.0


def test_missing_ram_folder_is_a_handle_error(cache_dir):
  with pytest.raises(hub_adapter.errors.HandleError, match="does not exist"):
    resolve_lib.resolve(_ram("nothing"))


@pytest.mark.parametrize("scheme", ["ram", "file"])
def test_cache_on_a_tf_file_system(model_archive, tmp_path, monkeypatch,
                                   scheme):
  cache_url = (_ram("cache") if scheme == "ram"
               else "file://" + str(tmp_path / "cache"))
  monkeypatch.setenv("TFHUB_CACHE_DIR", cache_url)
  data = open(model_archive, "rb").read()
  with http_server.serve({"/m.tgz": data}) as server:
    url = server.url("/m.tgz")
    assert _value(url) == 11.0
    assert _value(url) == 11.0
    assert server.count("/m.tgz") == 1
  key = resolve_lib.cache_key(url)
  # tensorflow_hub's layout: the entry and its descriptor, nothing else.
  assert _listing(cache_url) == [key, key + ".descriptor.txt"]
  assert _listing(cache_url + "/" + key) == _model_dir_of(model_archive)
  with tf.io.gfile.GFile(cache_url + "/" + key + ".descriptor.txt") as f:
    text = f.read()
  assert text.startswith(f"Module: {url}\n")
  assert cache.MARKER_PREFIX in text


def test_layout_and_permissions_follow_the_umask(model_archive, cache_dir):
  old = os.umask(0o022)
  try:
    shared = resolve_lib.resolve(model_archive)
  finally:
    os.umask(old)
  assert sorted(os.listdir(cache_dir)) == sorted(
      [os.path.basename(shared), os.path.basename(shared) + ".descriptor.txt"])
  assert "saved_model.pb" in os.listdir(shared)
  assert not [n for n in os.listdir(shared) if "hub_adapter" in n]
  for root, dirs, files in os.walk(shared):
    for name in dirs:
      assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o755
    for name in files:
      assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o644
  assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
  assert stat.S_IMODE(os.stat(cache.descriptor_path(shared)).st_mode) == 0o644
  # A private umask gives private entries.
  os.utime(model_archive)  # A new stamp: a new entry.
  old = os.umask(0o077)
  try:
    private = resolve_lib.resolve(model_archive)
  finally:
    os.umask(old)
  assert private != shared
  assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
  for root, dirs, files in os.walk(private):
    for name in files:
      assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o600


def _hub():
  from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
  return import_tensorflow_hub()


@pytest.mark.parametrize("scheme", ["local", "file"])
def test_cache_shared_with_tensorflow_hub_both_ways(model_archive, tmp_path,
                                                    monkeypatch, scheme):
  # (tensorflow_hub itself cannot use a ram:// cache: ram:// answers
  # exists() by name prefix, so it waits for its own lock forever.)
  cache_url = str(tmp_path / "cache")
  if scheme == "file":
    cache_url = "file://" + cache_url
  monkeypatch.setenv("TFHUB_CACHE_DIR", cache_url)
  data = open(model_archive, "rb").read()
  with http_server.serve({"/ours.tgz": data, "/theirs.tgz": data}) as server:
    # Ours first: tensorflow_hub finds the entry and does not download.
    ours = server.url("/ours.tgz")
    assert _value(ours) == 11.0
    assert float(_hub().load(ours)(tf.constant(3.0))) == 11.0
    assert server.count("/ours.tgz") == 1
    # tensorflow_hub's first: we find its entry and do not download.
    theirs = server.url("/theirs.tgz")
    assert float(_hub().load(theirs)(tf.constant(3.0))) == 11.0
    assert _value(theirs) == 11.0
    assert server.count("/theirs.tgz") == 1
  for url in (ours, theirs):
    key = resolve_lib.cache_key(url)
    assert key in _listing(cache_url)
    assert key + ".descriptor.txt" in _listing(cache_url)
  assert not [n for n in _listing(cache_url)
              if n.endswith((".lock", ".tmp"))]


def test_failed_download_leaves_nothing_on_ram(tmp_path, monkeypatch):
  cache_url = _ram("cache")
  monkeypatch.setenv("TFHUB_CACHE_DIR", cache_url)
  with http_server.serve({"/bad.tgz": b"not an archive"}) as server:
    with pytest.raises(hub_adapter.errors.HubAdapterError):
      resolve_lib.resolve(server.url("/bad.tgz"))
  assert _listing(cache_url) == []


def test_remote_lock_is_tensorflow_hubs_lock_file(monkeypatch):
  cache_url = _ram("cache")
  tf.io.gfile.makedirs(cache_url)
  with cache.remote_entry_lock(cache_url, "k", "uid1") as lock:
    assert lock == cache_url + "/k.lock"
    with tf.io.gfile.GFile(lock) as f:
      assert f.read().endswith(f".{os.getpid()}.uid1")
    with pytest.raises(hub_adapter.errors.CacheError, match="k.lock"):
      with cache.remote_entry_lock(cache_url, "k", "uid2", timeout=0.2):
        pass
  assert _listing(cache_url) == []
