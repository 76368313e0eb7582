"""resolve(): handle forms, tensorflow_hub's URLs and cache names, sharing
the cache with tensorflow_hub, and re-fetching broken entries."""
import hashlib
import importlib
import os
import shutil

import pytest

from hub_adapter import cache
from hub_adapter import errors

import http_server  # pylint: disable=wrong-import-order

resolve_lib = importlib.import_module("hub_adapter.handles")
inspect_lib = importlib.import_module("hub_adapter.inspection")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
  folder = tmp_path / "cache"
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(folder))
  monkeypatch.setenv("HUB_ADAPTER_HTTP_BACKOFF", "0.01")
  monkeypatch.setenv("HUB_ADAPTER_HTTP_TIMEOUT", "5")
  return folder


def _signatures(path):
  info = inspect_lib.inspect_folder(path)
  return {tags: {k: (s.inputs, s.outputs) for k, s in sigs.items()}
          for tags, sigs in info.signatures.items()}


def test_local_folder(shared_fixtures, monkeypatch):
  path = shared_fixtures.path("tf2_signatures_only")
  assert resolve_lib.resolve(path) == path
  import pathlib
  assert resolve_lib.resolve(pathlib.Path(path)) == path
  assert resolve_lib.resolve("file://" + path) == path
  monkeypatch.chdir(os.path.dirname(path))
  assert resolve_lib.resolve("tf2_signatures_only") == path


@pytest.mark.parametrize("name", ["tf1_image_with_attachments",
                                  "half_plus_two_v1", "tf2_text_vocab_asset",
                                  "tf2_keras_savedmodel"])
def test_local_archives_extract_into_the_cache(shared_fixtures, cache_dir,
                                               name):
  archive = shared_fixtures.archive(name)
  folder = resolve_lib.resolve(archive)
  assert os.path.dirname(folder) == str(cache_dir)
  assert cache.is_complete(folder)
  assert _signatures(folder) == _signatures(shared_fixtures.path(name))
  marker = cache.read_marker(folder)
  assert marker["archive"] == archive
  # Resolving again reuses the entry without extracting anything.
  stamp = os.stat(cache.descriptor_path(folder)).st_mtime_ns
  assert resolve_lib.resolve(archive) == folder
  assert os.stat(cache.descriptor_path(folder)).st_mtime_ns == stamp


def test_bad_handles(tmp_path):
  with pytest.raises(errors.HandleError, match="does not exist") as e:
    resolve_lib.resolve(str(tmp_path / "missing"))
  assert "a local .tar.gz/.tgz/.tar archive" in str(e.value)
  with pytest.raises(errors.HandleError, match="https://tfhub.dev/google/"
                     "nnlm-en-dim50/2"):
    resolve_lib.resolve("google/nnlm-en-dim50/2")
  with pytest.raises(errors.HandleError, match="unsupported URL scheme"):
    resolve_lib.resolve("ftp://example.com/model.tar.gz")
  with pytest.raises(errors.HandleError, match="has no host"):
    resolve_lib.resolve("https:///model.tar.gz")
  with pytest.raises(errors.HandleError, match="empty"):
    resolve_lib.resolve("")
  with pytest.raises(errors.HandleError, match="must be a string"):
    resolve_lib.resolve(42)
  (tmp_path / "weights.h5").write_bytes(b"x")
  with pytest.raises(errors.HandleError, match="not a model archive"):
    resolve_lib.resolve(str(tmp_path / "weights.h5"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(errors.HandleError, match="is empty"):
    resolve_lib.resolve(str(tmp_path / "empty"))
  (tmp_path / "notes").mkdir()
  (tmp_path / "notes" / "README").write_text("hi")
  with pytest.raises(errors.ModelFormatError, match="Found: README"):
    resolve_lib.resolve(str(tmp_path / "notes"))
  # Every one of them is also the built-in exception callers already catch.
  assert issubclass(errors.HandleError, OSError)
  assert issubclass(errors.ModelFormatError, ValueError)


@pytest.mark.parametrize("handle,hint", [
    # Kaggle's handle form: owner/model/framework/variation/version.
    ("google/nnlm/tensorFlow2/en-dim50/1",
     "Kaggle model handle (owner/model/framework/variation/version); the "
     "URL for it is https://www.kaggle.com/models/google/nnlm/frameworks/"
     "tensorFlow2/variations/en-dim50/versions/1."),
    ("google/mobilenet-v2/TfLite/100-224-classification/2",
     "https://www.kaggle.com/models/google/mobilenet-v2/frameworks/TfLite/"
     "variations/100-224-classification/versions/2."),
    ("google/nnlm/tensorFlow2/en-dim50",
     "without its version; its URL is https://www.kaggle.com/models/google/"
     "nnlm/frameworks/tensorFlow2/variations/en-dim50/versions/N"),
    # tfhub.dev paths, short and long: never taken for Kaggle handles.
    ("google/nnlm-en-dim50/2",
     "tfhub.dev path; the handle for that is "
     "https://tfhub.dev/google/nnlm-en-dim50/2."),
    ("google/imagenet/mobilenet_v2_100_224/feature_vector/5",
     "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"
     "."),
    # Model URLs without their scheme.
    ("www.kaggle.com/models/google/nnlm/tensorFlow2/en-dim50/1",
     "write it as https://www.kaggle.com/models/google/nnlm/tensorFlow2/"
     "en-dim50/1."),
    ("tfhub.dev/google/nnlm-en-dim50/2",
     "write it as https://tfhub.dev/google/nnlm-en-dim50/2."),
])
def test_missing_model_paths_get_the_url_they_stand_for(handle, hint,
                                                        tmp_path,
                                                        monkeypatch):
  # As tensorflow_hub 0.16.1 does, a string without a scheme is a local path
  # (here: one that does not exist); the error says which URL was meant.
  monkeypatch.chdir(tmp_path)
  with pytest.raises(errors.HandleError, match="does not exist") as info:
    resolve_lib.resolve(handle)
  assert hint in str(info.value)
  # Those URLs are fetched the way tensorflow_hub fetches them.
  url = resolve_lib.kaggle_url(handle)
  if url is not None and not url.endswith("/"):
    assert resolve_lib.download_url(url) == url + "?tf-hub-format=compressed"


def test_no_hint_for_paths_that_are_not_model_handles(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  for handle in ("models/my_model", "data/train/tensorflow2/x/1extra/y/z"):
    with pytest.raises(errors.HandleError) as info:
      resolve_lib.resolve(handle)
    assert "It looks like" not in str(info.value)
  assert resolve_lib.kaggle_url("a/b/notaframework/c/1") is None


def test_parse_handle_kinds(shared_fixtures):
  parse = resolve_lib.parse_handle
  assert parse("https://tfhub.dev/google/nnlm-en-dim50/2").kind == "url"
  assert parse("HTTP://example.com/m.tgz").kind == "url"
  assert parse("gs://bucket/m.tar.gz").kind == "gcs_archive"
  assert parse("gs://bucket/model").kind == "gcs_folder"
  assert parse(shared_fixtures.archive("half_plus_two_v1")).kind == "archive"
  assert parse(shared_fixtures.path("half_plus_two_v1")).kind == "folder"
  assert parse("ram://models/m.tgz").kind == "gcs_archive"
  assert parse("ram://models/m").kind == "gcs_folder"


@pytest.mark.parametrize("handle,url", [
    ("https://tfhub.dev/google/nnlm-en-dim50/2",
     "https://tfhub.dev/google/nnlm-en-dim50/2?tf-hub-format=compressed"),
    ("https://www.kaggle.com/models/google/nnlm/frameworks/tensorFlow2/"
     "variations/en-dim50/versions/1",
     "https://www.kaggle.com/models/google/nnlm/frameworks/tensorFlow2/"
     "variations/en-dim50/versions/1?tf-hub-format=compressed"),
    ("https://www.kaggle.com/models/google/nnlm/tensorFlow2/en-dim50/1",
     "https://www.kaggle.com/models/google/nnlm/tensorFlow2/en-dim50/1"
     "?tf-hub-format=compressed"),
    ("https://example.com/m?version=3",
     "https://example.com/m?version=3&tf-hub-format=compressed"),
    ("https://hub.tensorflow.google.cn/google/nnlm-en-dim50/2",
     "https://gcs.tensorflow.google.cn/tfhub-modules/google/nnlm-en-dim50/2"
     ".tar.gz"),
])
def test_download_url_is_tensorflow_hubs(handle, url):
  assert resolve_lib.download_url(handle) == url


def test_cache_folder_names_are_tensorflow_hubs(tmp_path, monkeypatch):
  from hub_adapter._hub_import import import_tensorflow_hub
  import_tensorflow_hub()
  from tensorflow_hub import compressed_module_resolver
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
  assert resolve_lib.cache_dir() == str(tmp_path)
  handle = "https://tfhub.dev/google/nnlm-en-dim50/2"
  ours = os.path.join(resolve_lib.cache_dir(), resolve_lib.cache_key(handle))
  assert ours == compressed_module_resolver._module_dir(handle)  # pylint: disable=protected-access
  assert resolve_lib.cache_key(handle) == hashlib.sha1(
      handle.encode()).hexdigest()


def _hub_resolve(handle):
  from hub_adapter._hub_import import import_tensorflow_hub
  return import_tensorflow_hub().resolve(handle)


def test_cache_is_shared_with_tensorflow_hub(shared_fixtures, cache_dir):
  data = open(shared_fixtures.archive("tf1_tokens_signature_only"), "rb").read()
  with http_server.serve({"/a.tar.gz": data, "/b.tar.gz": data}) as server:
    # Ours first: tensorflow_hub then finds the entry and does not download.
    ours = resolve_lib.resolve(server.url("/a.tar.gz"))
    assert server.requests == ["/a.tar.gz?tf-hub-format=compressed"]
    assert _hub_resolve(server.url("/a.tar.gz")) == ours
    assert server.count("/a.tar.gz") == 1
    # tensorflow_hub's entry (no marker) is checked and adopted by us.
    theirs = _hub_resolve(server.url("/b.tar.gz"))
    assert server.count("/b.tar.gz") == 1
    assert cache.read_marker(theirs) is None
    assert os.path.isfile(cache.descriptor_path(theirs))
    assert resolve_lib.resolve(server.url("/b.tar.gz")) == theirs
    assert server.count("/b.tar.gz") == 1
    assert cache.is_complete(theirs)


def test_half_deleted_entries_are_fetched_again(shared_fixtures, cache_dir):
  data = open(shared_fixtures.archive("tf1_text_embedding"), "rb").read()
  with http_server.serve({"/m.tar.gz": data}) as server:
    url = server.url("/m.tar.gz")
    folder = resolve_lib.resolve(url)
    os.remove(os.path.join(folder, "variables", "variables.index"))
    assert resolve_lib.resolve(url) == folder
    assert server.count("/m.tar.gz") == 2
    assert os.path.isfile(os.path.join(folder, "variables", "variables.index"))
    # A file that changed size (a damaged copy) also invalidates the entry.
    with open(os.path.join(folder, "assets", "tokens.txt"), "ab") as f:
      f.write(b"extra\n")
    resolve_lib.resolve(url)
    assert server.count("/m.tar.gz") == 3
    # Without its marker and with a file gone: not adoptable, fetched again.
    os.remove(cache.descriptor_path(folder))
    shutil.rmtree(os.path.join(folder, "variables"))
    resolve_lib.resolve(url)
    assert server.count("/m.tar.gz") == 4
    # An entry folder left empty is fetched again too.
    shutil.rmtree(folder)
    os.mkdir(folder)
    resolve_lib.resolve(url)
    assert server.count("/m.tar.gz") == 5
    assert sorted(os.listdir(cache_dir)) == [
        os.path.basename(folder),
        os.path.basename(cache.descriptor_path(folder))]


def test_fetch_prints_progress(shared_fixtures, cache_dir, capsys):
  data = open(shared_fixtures.archive("tf2_image_bn_reusable"), "rb").read()
  with http_server.serve({"/m.tar.gz": data}) as server:
    folder = resolve_lib.fetch(server.url("/m.tar.gz"))
  err = capsys.readouterr().err
  assert f"Downloading {server.url('/m.tar.gz')}?tf-hub-format=compressed: " \
      "100%" in err
  assert "Extracting" in err
  assert os.path.isfile(os.path.join(folder, "saved_model.pb"))


def test_cache_dir_and_load_format_match_tensorflow_hub(tmp_path, monkeypatch):
  from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
  import_tensorflow_hub()
  from tensorflow_hub import resolver  # pylint: disable=g-import-not-at-top
  for value in (str(tmp_path / "c"), None):
    if value is None:
      monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)
    else:
      monkeypatch.setenv("TFHUB_CACHE_DIR", value)
    assert resolve_lib.cache_dir() == os.path.abspath(
        resolver.tfhub_cache_dir(use_temp=True))
  monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
  assert resolve_lib._uncompressed_requested()  # pylint: disable=protected-access
  assert resolver.model_load_format() == "UNCOMPRESSED"


def test_cache_hit_does_not_import_tensorflow_hub(tmp_path, shared_fixtures):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  archive = shared_fixtures.archive("half_plus_two_v1")
  code = ("import sys; from hub_adapter import handles; "
          "print(handles.resolve(sys.argv[1])); "
          "print('tensorflow_hub' in sys.modules)")
  env = dict(os.environ, TFHUB_CACHE_DIR=str(tmp_path / "cache"))
  with http_server.serve({"/m.tar.gz": open(archive, "rb").read()}) as server:
    url = server.url("/m.tar.gz")
    runs = [subprocess.run([sys.executable, "-c", code, url], env=env,
                           capture_output=True, text=True, check=True
                           ).stdout.split() for _ in range(2)]
  assert runs[0][0] == runs[1][0]
  assert runs[0][1] == "True"   # the download used tensorflow_hub's URL rules
  assert runs[1][1] == "False"  # the cache hit did not import it
  assert server.count("/m.tar.gz") == 1


def test_folder_load_does_not_import_the_http_client(shared_fixtures):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = ("import sys, hub_adapter; hub_adapter.load(sys.argv[1]); "
          "print('hub_adapter.download' in sys.modules)")
  out = subprocess.run(
      [sys.executable, "-c", code, shared_fixtures.path("half_plus_two_v1")],
      capture_output=True, text=True, check=True).stdout.split()
  assert out[-1] == "False"
