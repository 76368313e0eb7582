"""Property tests: hostile bytes and handles only ever give our errors.

Profiles: ``ci`` (the default: 60 examples per property, no deadline) and
``thorough`` (600); pick one with ``HYPOTHESIS_PROFILE``.
"""
import importlib
import os
import shutil
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from hub_adapter import archives
from hub_adapter import errors
from hub_adapter import integrity
from hub_adapter import proto_readers
from hub_adapter import untrusted

import fixtures  # pylint: disable=wrong-import-order

inspect_lib = importlib.import_module("hub_adapter.inspection")
resolve_lib = importlib.import_module("hub_adapter.handles")

# Hypothesis keeps caches under ./.hypothesis by default; never in the repo.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(
    tempfile.gettempdir(), "hub_adapter_hypothesis"))
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=600, deadline=None,
                          database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SHARED = fixtures.locate()
PB_FILES = ("saved_model.pb", "tfhub_module.pb",
            os.path.join("variables", "variables.index"))


@pytest.fixture(scope="module")
def workdir():
  folder = tempfile.mkdtemp(prefix="hub_adapter_props_")
  yield folder
  shutil.rmtree(folder, ignore_errors=True)


def _model_copy(workdir, name):
  dst = os.path.join(workdir, name)
  if os.path.exists(dst):
    shutil.rmtree(dst)
  shutil.copytree(SHARED.path(name), dst)
  for root, dirs, files in os.walk(dst):
    for n in dirs + files:
      os.chmod(os.path.join(root, n), 0o755)
  return dst


def _read(name, file):
  with open(os.path.join(SHARED.path(name), file), "rb") as f:
    return f.read()


def _everything_on(path):
  """inspect_folder, check_folder and scan: only ModelFormatError may leave."""
  try:
    info = inspect_lib.inspect_folder(path, handle="prop")
    integrity.check_folder(info, "prop")
    untrusted.scan(info)
  except errors.ModelFormatError as e:
    assert "prop" in str(e) or path in str(e)


@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_as_saved_model_pb(workdir, data):
  path = _model_copy(workdir, "half_plus_two_v1")
  with open(os.path.join(path, "saved_model.pb"), "wb") as f:
    f.write(data)
  _everything_on(path)


@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_as_tfhub_module_pb(workdir, data):
  path = _model_copy(workdir, "half_plus_two_v1")
  with open(os.path.join(path, "tfhub_module.pb"), "wb") as f:
    f.write(data)
  try:
    info = inspect_lib.inspect_folder(path)
    assert info.module_format_version == 3 and info.required_features == ()
  except errors.ModelFormatError as e:
    assert e.file == "tfhub_module.pb"


@given(name=st.sampled_from(SHARED.names()), file=st.sampled_from(PB_FILES),
       where=st.floats(0, 1), cut=st.booleans(),
       noise=st.binary(min_size=1, max_size=24))
def test_damaged_real_files(workdir, name, file, where, cut, noise):
  if not os.path.exists(os.path.join(SHARED.path(name), file)):
    file = "saved_model.pb"
  data = _read(name, file)
  at = int(where * len(data))
  damaged = data[:at] if cut else data[:at] + noise + data[at + len(noise):]
  path = _model_copy(workdir, name)
  with open(os.path.join(path, file), "wb") as f:
    f.write(damaged)
  os.remove(os.path.join(path, "fingerprint.pb")) if os.path.exists(
      os.path.join(path, "fingerprint.pb")) else None
  _everything_on(path)


@given(data=st.binary(max_size=400))
def test_proto_readers_raise_only_proto_error(data):
  for reader in (proto_readers.parse_module_def,
                 proto_readers.parse_module_attachment,
                 proto_readers.parse_tensor_shape,
                 proto_readers.parse_bundle_index,
                 lambda d: list(proto_readers.fields(d))):
    try:
      reader(data)
    except proto_readers.ProtoError:
      pass


@given(data=st.binary(min_size=1, max_size=32), at=st.floats(0, 1))
def test_index_with_noise_raises_only_proto_error(data, at):
  index = _read("tf2_image_bn_reusable", os.path.join("variables",
                                                       "variables.index"))
  pos = int(at * len(index))
  try:
    proto_readers.parse_bundle_index(index[:pos] + data + index[pos + len(data):])
  except proto_readers.ProtoError:
    pass


HANDLE_TEXT = st.one_of(
    st.text(max_size=40),
    st.builds(lambda scheme, rest: scheme + rest,
              st.sampled_from(["http://", "https://", "gs://", "file://",
                               "ftp://", "HTTPS://", "", "./", "/", "~/"]),
              st.text(max_size=30)),
)


@given(handle=HANDLE_TEXT)
def test_parse_handle_accepts_or_raises_handle_error(handle):
  try:
    parsed = resolve_lib.parse_handle(handle)
  except errors.HandleError as e:
    assert isinstance(e, OSError)
    return
  assert parsed.handle == handle
  assert parsed.kind in ("folder", "archive", "url", "gcs_folder",
                         "gcs_archive")
  if parsed.kind in ("folder", "archive"):
    assert os.path.isabs(parsed.path) and os.path.exists(parsed.path)
  else:
    assert parsed.url == handle


@given(handle=st.one_of(st.none(), st.integers(), st.floats(),
                        st.lists(st.text(max_size=3), max_size=2)))
def test_non_string_handles_are_refused_by_type(handle):
  with pytest.raises(errors.HandleError) as caught:
    resolve_lib.parse_handle(handle)
  assert "must be a string or path" in str(caught.value)
  assert type(handle).__name__ in str(caught.value)


@given(handle=st.binary(max_size=10))
def test_byte_handles_mean_their_utf8_text(handle):
  """Bytes are decoded as UTF-8 and then parsed as that text; bytes that are
  not UTF-8 are refused like any other non-string."""
  try:
    text = handle.decode("utf-8")
  except UnicodeDecodeError:
    with pytest.raises(errors.HandleError, match="must be a string or path"):
      resolve_lib.parse_handle(handle)
    return
  try:
    expected = resolve_lib.parse_handle(text)
  except errors.HandleError as e:
    with pytest.raises(errors.HandleError) as caught:
      resolve_lib.parse_handle(handle)
    assert str(caught.value) == str(e)
  else:
    assert resolve_lib.parse_handle(handle) == expected


@given(name=st.text(max_size=40))
def test_safe_member_path_never_escapes(name):
  rel = archives.safe_member_path(name)
  if rel is None:
    return
  assert not rel.startswith("/") and ".." not in rel.split("/")
  assert archives.safe_member_path(rel) == (rel or None)  # "" is the root.
  root = "/target"
  full = os.path.normpath(os.path.join(root, rel))
  assert full == root or full.startswith(root + "/")


def _crc32c_bitwise(data, crc=0):
  """The CRC-32C definition, bit by bit (reflected polynomial 0x82F63B78)."""
  crc ^= 0xFFFFFFFF
  for byte in data:
    crc ^= byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
  return crc ^ 0xFFFFFFFF


@given(head=st.binary(max_size=300), tail=st.binary(max_size=300))
def test_crc32c_is_the_castagnoli_crc_and_extends(head, tail):
  assert proto_readers.crc32c(head + tail) == _crc32c_bitwise(head + tail)
  assert proto_readers.crc32c(tail, proto_readers.crc32c(head)) == \
      proto_readers.crc32c(head + tail)
  value = proto_readers.crc32c(head)
  assert proto_readers.unmask_crc(proto_readers.mask_crc(value)) == value
