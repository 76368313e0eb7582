"""Parity of hub_adapter's Module with tensorflow_hub 0.15's hub.Module.

The goldens were recorded with the real ``hub.Module`` (TF 2.15, hub
0.15.0); every ``hub.Module`` and ``hub.Module.update_ops`` case of every
TF1 fixture must come out the same here, on TF 2.15 and TF 2.21, and the
collections a Module adds must have the recorded sizes. Where hub 0.15 is
installed (the TF 2.15 stack), one more test builds both Modules side by
side and compares what they add to the graph.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import fixtures
from hub_adapter.tf1.module import Module

pytestmark = pytest.mark.tf1_compat

SHARED = fixtures.locate()
TF1_FIXTURES = SHARED.names("tf1_hub")
MODULE_CASES = [(name, case.id) for name in TF1_FIXTURES
                for case in SHARED.cases(name, "hub.Module")]
UPDATE_CASES = [(name, case.id) for name in TF1_FIXTURES
                for case in SHARED.cases(name, "hub.Module.update_ops")]
COLLECTION_CASES = [
    (name, tuple(record["tags"]), record["signature"], trainable)
    for name in TF1_FIXTURES
    for record in SHARED.entry(name).get("collections", [])
    for trainable in (False, True)]


def _case(name, case_id):
  return next(c for c in SHARED.cases(name) if c.id == case_id)


def _initialize(session):
  session.run([tf.compat.v1.global_variables_initializer(),
               tf.compat.v1.tables_initializer()])


def test_every_fixture_has_module_cases():
  assert len(TF1_FIXTURES) == 7
  assert {name for name, _ in MODULE_CASES} == set(TF1_FIXTURES)
  assert UPDATE_CASES, "the manifest records an UPDATE_OPS case"


@pytest.mark.parametrize("name,case_id", MODULE_CASES)
def test_module_case_matches_golden(name, case_id):
  case = _case(name, case_id)
  module = Module(SHARED.path(name), tags=set(case.spec["tags"]))
  outputs = module(case.module_inputs(), signature=case.spec["signature"],
                   as_dict=True)
  with tf.compat.v1.Session() as session:
    _initialize(session)
    case.assert_outputs(session.run(outputs))


@pytest.mark.parametrize("name,case_id", UPDATE_CASES)
def test_update_ops_case_matches_golden(name, case_id):
  case = _case(name, case_id)
  module = Module(SHARED.path(name), trainable=case.spec["trainable"],
                  tags=set(case.spec["tags"]))
  outputs = module(case.module_inputs(), signature=case.spec["signature"],
                   as_dict=True)
  update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  assert update_ops
  with tf.compat.v1.Session() as session:
    _initialize(session)
    case.assert_outputs(session.run(outputs))
    session.run(update_ops)
    state = session.run({k: module.variable_map[k]
                         for k in case.state_after()})
  tol = case.fixture["tolerance"]
  for key, want in case.state_after().items():
    np.testing.assert_allclose(state[key], want, err_msg=key, **tol)


@pytest.mark.parametrize("name,tags,signature,trainable", COLLECTION_CASES)
def test_collections_match_manifest(name, tags, signature, trainable):
  record = next(r for r in SHARED.entry(name)["collections"]
                if tuple(r["tags"]) == tags and r["signature"] == signature)
  want = record["trainable_module" if trainable else "non_trainable_module"]
  module = Module(SHARED.path(name), trainable=trainable, tags=set(tags))
  info = module.get_input_info_dict(signature)
  inputs = {k: tf.zeros([2] + v.get_shape().as_list()[1:], v.dtype)
            if v.get_shape().rank else tf.constant(0.5, v.dtype)
            for k, v in info.items()}
  module(inputs, signature=signature)
  keys = tf.compat.v1.GraphKeys
  update_ops = tf.compat.v1.get_collection(keys.UPDATE_OPS)
  losses = tf.compat.v1.get_collection(keys.REGULARIZATION_LOSSES)
  assert len(update_ops) == want["num_update_ops"]
  assert len(losses) == want["num_regularization_losses"]
  written = sorted(
      module_name
      for op in update_ops
      for module_name, var in module.variable_map.items()
      if var.handle.op in [i.op for i in op.inputs])
  assert written == sorted(want["update_ops_variables"])


@pytest.mark.parametrize("name", TF1_FIXTURES)
def test_variables_match_manifest(name):
  entry = SHARED.entry(name)
  module = Module(SHARED.path(name), trainable=True)
  assert sorted(module.variable_map) == sorted(v["name"]
                                               for v in entry["variables"])
  for var in entry["variables"]:
    value = module.variable_map[var["name"]]
    if "partitions" in var:
      assert [p.op.name for p in value] == [
          f"module/{p}" for p in var["partitions"]]
      assert [p.shape.as_list() for p in value] == var["partition_shapes"]
    else:
      assert value.shape.as_list() == var["shape"]
      assert value.dtype.base_dtype.name == var["dtype"]
  trainable = {v.op.name for v in module.trainable_variables}
  assert trainable == {
      p for v in entry["variables"] if v["trainable"]
      for p in [f"module/{n}" for n in v.get("partitions", [v["name"]])]}


@pytest.mark.requires("hub_module")
@pytest.mark.parametrize("name", TF1_FIXTURES)
def test_side_by_side_with_tensorflow_hub(name):
  """Builds hub.Module and ours in twin graphs and compares them."""
  from hub_adapter._hub_import import import_tensorflow_hub
  hub = import_tensorflow_hub()
  path = SHARED.path(name)
  tags = max((set(t) for t in SHARED.entry(name)["tag_sets"]), key=len)
  report = {}
  for label, module_class in (("hub", hub.Module), ("ours", Module)):
    graph = tf.Graph()
    with graph.as_default():
      module = module_class(path, trainable=True, tags=tags)
      outputs = {}
      for signature in sorted(module.get_signature_names()):
        info = module.get_input_info_dict(signature)
        feeds = {}
        for key, spec in sorted(info.items()):
          shape = spec.get_shape()
          if spec.is_sparse:
            feeds[key] = tf.SparseTensor([[0, 0], [1, 2]], tf.constant(
                [1, 3], spec.dtype), [2, 4])
          elif spec.is_composite:
            feeds[key] = tf.RaggedTensor.from_row_splits(
                tf.constant([1, 2, 3], spec.dtype), [0, 2, 3])
          elif spec.dtype == tf.string:
            feeds[key] = tf.constant(
                [["the quick fox", "lazy"], ["dog", ""]] if shape.rank == 2
                else ["the quick brown fox", ""])
          elif spec.dtype == tf.int32:
            feeds[key] = tf.constant([2, 1])
          elif shape.rank is None:
            feeds[key] = tf.constant([1.0, 3.0])
          elif shape.rank == 0:
            feeds[key] = tf.constant(0.5)
          else:
            dims = [2] + [d or 5 for d in shape.as_list()[1:]]
            feeds[key] = tf.constant(
                np.linspace(-1, 1, np.prod(dims)).reshape(dims), tf.float32)
        outputs[signature] = module(feeds, signature=signature, as_dict=True)
      keys = tf.compat.v1.GraphKeys
      with tf.compat.v1.Session(graph=graph) as session:
        _initialize(session)
        deterministic = {
            s: {k: v for k, v in o.items()
                if not (s == "image_classification" and "train" in tags)}
            for s, o in outputs.items()}
        values = session.run(deterministic)
      report[label] = {
          "variable_map": sorted(module.variable_map),
          "variables": [v.op.name for v in module.variables],
          "trainable": sorted(v.op.name for v in
                              tf.compat.v1.trainable_variables()),
          "update_ops": len(graph.get_collection(keys.UPDATE_OPS)),
          "losses": len(graph.get_collection(keys.REGULARIZATION_LOSSES)),
          "tables": len(graph.get_collection(keys.TABLE_INITIALIZERS)),
          "values": values,
      }
  hub_report, ours = report["hub"], report["ours"]
  for key in ("variable_map", "variables", "trainable", "update_ops",
              "losses", "tables"):
    assert ours[key] == hub_report[key], key
  for signature, out in hub_report["values"].items():
    for key, want in out.items():
      np.testing.assert_allclose(ours["values"][signature][key], want,
                                 rtol=1e-5, atol=1e-5,
                                 err_msg=f"{signature}/{key}")
