"""hub_adapter.tf1.v1_gradients: backward passes of v1 control flow."""
from __future__ import annotations

from hub_adapter.tf1 import graph_surgery
from hub_adapter.tf1 import ref_variables
from hub_adapter.tf1 import spec as spec_lib
from hub_adapter.tf1 import v1_gradients

REFVAR = "tf1_refvar_lstm"


def test_gradient_graphs_of_every_signature(shared_fixtures):
  spec = spec_lib.read_module_spec(shared_fixtures.path(REFVAR))
  meta_graph = graph_surgery.copy_meta_graph(spec.get_meta_graph({"train"}))
  assert v1_gradients.has_v1_control_flow(meta_graph)
  variables = ref_variables.to_resource_variables(meta_graph)
  count = len(meta_graph.graph_def.node)
  gradients = v1_gradients.add_gradient_graphs(meta_graph, variables)
  assert sorted(gradients) == ["default", "tokens"]
  assert len(meta_graph.graph_def.node) > count
  nodes = {n.name for n in meta_graph.graph_def.node}
  default = gradients["default"]
  assert default.outputs == ("default",)
  targets = {(t.kind, t.name) for t in default.targets if t.grad}
  assert targets == {("variable", v) for v in variables}
  for target in default.targets:
    assert target.grad.split(":")[0] in nodes
  tokens = gradients["tokens"]
  assert tokens.outputs == ("default", "lstm_outputs", "word_emb")
  assert len(tokens.incoming) == 3
  # The v1 loop's gradient uses TF1's stacks, as TF1 built it.
  ops = {n.op for n in meta_graph.graph_def.node}
  assert {"StackV2", "StackPushV2", "StackPopV2"} <= ops


def test_graphs_without_v1_control_flow_need_no_gradients(shared_fixtures):
  spec = spec_lib.read_module_spec(
      shared_fixtures.path("tf1_sparse_ragged_inputs"))
  assert not v1_gradients.has_v1_control_flow(spec.get_meta_graph(set()))
