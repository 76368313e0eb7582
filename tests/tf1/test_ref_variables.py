"""hub_adapter.tf1.ref_variables: reference variables rewritten on protos."""
from __future__ import annotations

import collections

import pytest
import tensorflow as tf

from hub_adapter.tf1 import graph_surgery
from hub_adapter.tf1 import ref_variables
from hub_adapter.tf1 import spec as spec_lib

REFVAR = "tf1_refvar_lstm"


def _meta_graph(shared_fixtures, tags=()):
  spec = spec_lib.read_module_spec(shared_fixtures.path(REFVAR))
  return graph_surgery.copy_meta_graph(spec.get_meta_graph(set(tags)))


def _ops(meta_graph):
  return collections.Counter(n.op for n in meta_graph.graph_def.node)


@pytest.mark.parametrize("tags", [(), ("train",)])
def test_every_reference_becomes_a_resource(shared_fixtures, tags):
  meta_graph = _meta_graph(shared_fixtures, tags)
  before = _ops(meta_graph)
  assert before["VariableV2"] == 3
  names = ref_variables.to_resource_variables(meta_graph)
  assert sorted(names) == sorted(
      shared_fixtures.entry(REFVAR)["finetune"]["trainable_variables"])
  after = _ops(meta_graph)
  assert after["VariableV2"] == 0 and after["VarHandleOp"] == 3
  assert after["Assign"] == 0
  assert after["AssignVariableOp"] == before["Assign"]
  nodes = {n.name: n for n in meta_graph.graph_def.node}
  for name in names:
    # The snapshot keeps its name, so collections and signatures still
    # point at it.
    assert nodes[f"{name}/read"].op == "ReadVariableOp"
    assert nodes[name].attr["shared_name"].s == name.encode()
  # The rewritten graph imports and runs (v1 loop and cond included).
  graph = tf.Graph()
  with graph.as_default():
    tf.graph_util.import_graph_def(meta_graph.graph_def, name="")


def test_a_module_without_reference_variables_is_left_alone(shared_fixtures):
  spec = spec_lib.read_module_spec(
      shared_fixtures.path("tf1_sparse_ragged_inputs"))
  meta_graph = graph_surgery.copy_meta_graph(spec.get_meta_graph(set()))
  before = meta_graph.SerializeToString()
  assert ref_variables.to_resource_variables(meta_graph) == []
  assert meta_graph.SerializeToString() == before


def test_a_reference_op_without_resource_version_is_named(shared_fixtures):
  meta_graph = _meta_graph(shared_fixtures)
  node = meta_graph.graph_def.node.add()
  node.name, node.op = "count", "TemporaryVariable"
  user = meta_graph.graph_def.node.add()
  user.name, user.op = "destroy", "DestroyTemporaryVariable"
  user.input.append("word_emb")
  user.attr["T"].type = tf.float32.as_datatype_enum
  with pytest.raises(ref_variables.RefRewriteError) as raised:
    ref_variables.to_resource_variables(meta_graph)
  assert raised.value.node == "destroy"
  assert raised.value.op == "DestroyTemporaryVariable"
  assert "no resource-variable equivalent" in str(raised.value)
