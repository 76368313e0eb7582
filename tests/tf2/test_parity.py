"""Golden parity of hub_adapter.load, from folders and .tar.gz archives, and
drop-in parity with the real tensorflow_hub.load.

TF2 session: every golden of api ``call``, ``signature`` and
``regularization_losses`` (TF2 fixtures, with ``state_after`` where present)
and ``hub.load.signatures`` (TF1 fixtures), each through our own call path
(``model(inputs)``) and through ``model.signatures`` as hub.load users write
it; then hub.load and hub_adapter.load side by side on every fixture.
TF1 compat session: the TF2 fixtures' inference goldens in a Session.
"""
import numpy as np
import pytest

import hub_adapter
from hub_adapter._hub_import import import_tensorflow_hub

tf1_compat = pytest.mark.tf1_compat
SOURCES = ("folder", "archive")
TF2_APIS = ("call", "signature", "regularization_losses")


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _manifest():
  import fixtures  # pylint: disable=g-import-not-at-top
  return fixtures.locate()


def _handle(shared, name, source):
  return shared.path(name) if source == "folder" else shared.archive(name)


def _tensors(inputs):
  tf = _tf()
  return {k: tf.constant(v) for k, v in inputs.items()}


def _golden_cases():
  shared = _manifest()
  params = []
  for name in shared.names():
    for case in shared.entry(name)["cases"]:
      if case["api"] in TF2_APIS + ("hub.load.signatures",):
        for source in SOURCES:
          params.append(pytest.param(name, case["id"], source,
                                     id=f"{name}-{case['id']}-{source}"))
  return params


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  """Archives extract into a private cache, never the user's."""
  with pytest.MonkeyPatch.context() as patch:
    path = str(tmp_path_factory.mktemp("tfhub_cache"))
    patch.setenv("TFHUB_CACHE_DIR", path)
    yield path


@pytest.fixture(scope="module")
def loaded(cache_dir):  # pylint: disable=unused-argument
  """Loads shared by the stateless cases of this module (TF2 session)."""
  cache = {}

  def get(handle, **kwargs):
    key = (handle, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
    if key not in cache:
      cache[key] = hub_adapter.load(handle, **kwargs)
    return cache[key]
  return get


def _assert_state(model, case):
  values = {v.name: v.numpy() for v in model.variables}
  for name, want in case.state_after().items():
    np.testing.assert_allclose(values[name], want, rtol=1e-5, atol=1e-5,
                               err_msg=name)


@pytest.mark.parametrize("name, case_id, source", _golden_cases())
def test_golden(shared_fixtures, loaded, name, case_id, source):
  case = [c for c in shared_fixtures.cases(name) if c.id == case_id][0]
  spec = case.spec
  handle = _handle(shared_fixtures, name, source)
  api = spec["api"]
  if api == "call":
    fresh = "state_after" in spec or spec.get("training")
    model = hub_adapter.load(handle) if fresh else loaded(handle)
    x = case.call_input()
    training = spec.get("training")
    output = model(x) if training is None else model(x, training=training)
    case.assert_call_outputs(output)
    if "state_after" in spec:
      _assert_state(model, case)
  elif api == "regularization_losses":
    model = loaded(handle)
    np.testing.assert_allclose([float(f()) for f in
                                model.regularization_losses],
                               spec["values"], rtol=1e-5, atol=1e-5)
  else:
    tags = spec.get("tags")
    kwargs = {"tags": set(tags)} if tags is not None else {}
    ours = loaded(handle, signature=spec["signature"], as_dict=True,
                  **kwargs)
    case.assert_outputs(ours(case.inputs()))
    plain = loaded(handle, **kwargs)
    case.assert_outputs(
        plain.signatures[spec["signature"]](**_tensors(case.inputs())))


def _call_inputs(shared, name):
  cases = shared.cases(name, "call")
  return cases[0].call_input() if cases else None


@pytest.mark.parametrize("name", _manifest().names())
def test_same_as_tensorflow_hub_load(shared_fixtures, name):
  hub = import_tensorflow_hub()
  path = shared_fixtures.path(name)
  entry = shared_fixtures.entry(name)
  theirs = hub.load(path)
  ours = hub_adapter.load(path)
  assert sorted(ours.signatures) == sorted(theirs.signatures)
  assert sorted(v.name for v in ours.variables) == sorted(
      v.name for v in theirs.variables)
  assert hasattr(ours.raw, "__call__") == hasattr(theirs, "__call__")
  for attribute in (entry.get("attributes", [])
                    + entry.get("function_attributes", [])):
    assert hasattr(ours, attribute), attribute
  assert (getattr(ours, "_is_hub_module_v1")
          == getattr(theirs, "_is_hub_module_v1"))
  for signature, spec in entry["signatures"].items():
    cases = [c for c in shared_fixtures.cases(name)
             if c.spec.get("signature") == signature
             and not c.spec.get("tags") and c.spec.get("check") != "shape"]
    if not cases:
      continue
    inputs = _tensors(cases[0].inputs())
    want = theirs.signatures[signature](**inputs)
    got = ours.signatures[signature](**inputs)
    assert sorted(got) == sorted(want) == sorted(spec["outputs"])
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6)
  x = _call_inputs(shared_fixtures, name)
  if x is not None:
    tf = _tf()
    got, want = ours(x), theirs(x)
    tf.nest.assert_same_structure(got, want)
    for g, w in zip(tf.nest.flatten(got), tf.nest.flatten(want)):
      np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        [float(f()) for f in ours.regularization_losses],
        [float(f()) for f in theirs.regularization_losses], rtol=1e-6)


def test_tags_and_options_as_hub_load_takes_them(shared_fixtures):
  hub = import_tensorflow_hub()
  tf = _tf()
  path = shared_fixtures.path("tf1_image_feature_vector")
  options = tf.saved_model.LoadOptions(
      experimental_io_device="/job:localhost")
  theirs = hub.load(path, tags={"train"}, options=options)
  ours = hub_adapter.load(path, tags={"train"}, options=options)
  case = [c for c in shared_fixtures.cases(name="tf1_image_feature_vector")
          if c.id == "tf2_hubload_train_default"][0]
  inputs = _tensors(case.inputs())
  np.testing.assert_allclose(ours.signatures["default"](**inputs)["default"],
                             theirs.signatures["default"](**inputs)["default"],
                             rtol=1e-6, atol=1e-6)


def _graph_cases():
  shared = _manifest()
  params = []
  for name in shared.names("tf2_saved_model"):
    for case in shared.entry(name)["cases"]:
      if case["api"] == "signature" or (
          case["api"] == "call" and not case.get("training")):
        params.append(pytest.param(name, case["id"], id=f"{name}-{case['id']}"))
  return params


@tf1_compat
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name, case_id", _graph_cases())
@pytest.mark.usefixtures("cache_dir")
def test_golden_in_a_session(shared_fixtures, name, case_id, source):
  tf = _tf()
  case = [c for c in shared_fixtures.cases(name) if c.id == case_id][0]
  spec = case.spec
  handle = _handle(shared_fixtures, name, source)
  if spec["api"] == "call":
    model = hub_adapter.load(handle)
    x = case.call_input()
    training = spec.get("training")
    outputs = model(x) if training is None else model(x, training=training)
    if not isinstance(outputs, dict):
      outputs = {"output": outputs}
  else:
    model = hub_adapter.load(handle, signature=spec["signature"],
                             as_dict=True)
    outputs = model(case.inputs())
  with tf.compat.v1.Session() as session:
    session.run([tf.compat.v1.global_variables_initializer(),
                 tf.compat.v1.tables_initializer()])
    case.assert_outputs(session.run(outputs))
