"""hub_adapter.tf1.graph_surgery: meta graph edits, on protos only."""
from __future__ import annotations

import pytest
from tensorflow.core.protobuf import meta_graph_pb2

from hub_adapter import errors
from hub_adapter.tf1 import graph_surgery


def _graph(*nodes):
  """nodes: (name, op, inputs, colocate_with or None)."""
  meta_graph = meta_graph_pb2.MetaGraphDef()
  for name, op, inputs, colocate in nodes:
    node = meta_graph.graph_def.node.add(name=name, op=op)
    node.input.extend(inputs)
    if colocate:
      node.attr["_class"].list.s.append(f"loc:@{colocate}".encode())
  return meta_graph


def _names(meta_graph):
  return [n.name for n in meta_graph.graph_def.node]


def test_node_name():
  assert graph_surgery.node_name("^a/b") == "a/b"
  assert graph_surgery.node_name("a/b:12") == "a/b"
  assert graph_surgery.node_name("a/b") == "a/b"


def test_prune_follows_data_control_and_colocation():
  meta_graph = _graph(
      ("var", "VarHandleOp", [], None),
      ("read", "ReadVariableOp", ["var"], None),
      ("x", "Placeholder", [], None),
      ("guard", "NoOp", [], None),
      ("y", "Mul", ["x", "read:0", "^guard"], None),
      ("near", "Const", [], "var"),
      ("z", "Identity", ["near"], None),
      ("unused", "Const", [], None))
  graph_surgery.prune(meta_graph, ["y"])
  assert _names(meta_graph) == ["var", "read", "x", "guard", "y"]
  meta_graph = _graph(("var", "VarHandleOp", [], None),
                      ("near", "Const", [], "var"),
                      ("z", "Identity", ["near"], None))
  graph_surgery.prune(meta_graph, ["z"])
  assert _names(meta_graph) == ["var", "near", "z"]


def test_prune_keeps_graphs_with_v1_control_flow_whole():
  meta_graph = _graph(("a", "Const", [], None), ("b", "Const", [], None))
  meta_graph.collection_def["while_context"].bytes_list.value.append(b"")
  graph_surgery.prune(meta_graph, ["a"])
  assert _names(meta_graph) == ["a", "b"]


def test_replace_with_placeholders():
  meta_graph = _graph(("var", "VarHandleOp", [], "var"),
                      ("read", "ReadVariableOp", ["var"], None))
  meta_graph.graph_def.node[0].attr["shared_name"].s = b"var"
  graph_surgery.replace_with_placeholders(meta_graph, ["var"])
  node = meta_graph.graph_def.node[0]
  assert node.op == "Placeholder"
  assert sorted(node.attr) == ["dtype"]
  assert meta_graph.graph_def.node[1].op == "ReadVariableOp"


def test_prefix_shared_names():
  meta_graph = _graph(("t", "HashTableV2", [], None),
                      ("u", "HashTableV2", [], None))
  meta_graph.graph_def.node[0].attr["shared_name"].s = b"table"
  meta_graph.graph_def.node[1].attr["shared_name"].s = b""
  graph_surgery.prefix_shared_names(meta_graph, "outer/module")
  assert meta_graph.graph_def.node[0].attr["shared_name"].s == (
      b"outer/module/table")
  assert meta_graph.graph_def.node[1].attr["shared_name"].s == b""


def test_state_nodes_and_missing_ops():
  meta_graph = _graph(("var", "VarHandleOp", [], None),
                      ("table", "HashTableV2", [], None),
                      ("read", "ReadVariableOp", ["var"], None),
                      ("x", "Placeholder", [], None),
                      ("odd", "HubAdapterNoSuchOp", [], None))
  assert graph_surgery.state_node_names(meta_graph.graph_def) == [
      "var", "table"]
  assert graph_surgery.missing_ops(meta_graph) == ["HubAdapterNoSuchOp"]


def test_set_asset_paths_checks_nodes():
  meta_graph = _graph(("path", "Const", [], None))
  meta_graph.graph_def.node[0].attr["value"].tensor.string_val.append(b"x")
  graph_surgery.set_asset_paths(meta_graph, {"path": "/m/assets/v.txt"})
  assert meta_graph.graph_def.node[0].attr["value"].tensor.string_val == [
      b"/m/assets/v.txt"]
  with pytest.raises(errors.ModelFormatError, match="'gone'"):
    graph_surgery.set_asset_paths(meta_graph, {"gone": "/m/assets/v.txt"})
  not_const = _graph(("path", "Placeholder", [], None))
  with pytest.raises(errors.ModelFormatError, match="scalar string"):
    graph_surgery.set_asset_paths(not_const, {"path": "/m/assets/v.txt"})
