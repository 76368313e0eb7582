"""Finds ops in a model that touch files, the network, or run host code.

A SavedModel is a program. Loading one runs its restore and init ops, and
calling it runs whatever its functions hold, so a hostile model could read
or write files (``ReadFile``, ``WriteFile``, ``MatchingFiles``, checkpoint
ops), talk to other machines (RPC, data service, collectives) or run Python
(``PyFunc``, ``EagerPyFunc``). :func:`scan` reads the protos, never the
graph, and lists every such op in the graphs of every tag set and in every
function of the function library, saying where it is and what it can do.

The standard restore/save path is not flagged: the ``saver_def``'s nodes (and
the functions they call) may hold checkpoint ops (``SaveV2``, ``RestoreV2``,
``MergeV2Checkpoints``, ...), and table initializers may read the model's
own asset files. Anything else is reported; :func:`refuse_if_unsafe` turns
a non-empty report into :class:`~hub_adapter.errors.UnsafeModelError`
(``load(..., safe=True)``).
"""
from __future__ import annotations

import collections
import os
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from hub_adapter import errors
from hub_adapter import reader
from hub_adapter import signatures as signatures_lib
from hub_adapter.model_info import FlaggedOp, ModelInfo

_READS = "reads files from the host file system"
_WRITES = "writes files on the host file system"
_LISTS = "lists files on the host file system (glob)"
_CHECKPOINT = ("reads or writes checkpoint files outside the model's standard "
               "restore/save path")
_NETWORK = "communicates over the network"
_CODE = "runs host (Python) code that is not part of the saved graph"
_DATASET = "reads or writes files through a tf.data pipeline"
_SUMMARY = "writes summary/event files"
_DEBUG = "sends tensors to debug URLs (files or gRPC)"
_DB = "opens a database connection"

RISKY_OPS: Dict[str, str] = {
    # Files.
    "ReadFile": _READS, "WriteFile": _WRITES, "MatchingFiles": _LISTS,
    "MatchingFilesDataset": _LISTS, "ImmutableConst":
    "memory-maps a file region", "WholeFileReader": _READS,
    "WholeFileReaderV2": _READS, "TextLineReader": _READS,
    "TextLineReaderV2": _READS, "TFRecordReader": _READS,
    "TFRecordReaderV2": _READS, "FixedLengthRecordReader": _READS,
    "FixedLengthRecordReaderV2": _READS, "LMDBReader": _READS,
    "GenerateVocabRemapping": _READS, "LoadAndRemapMatrix": _READS,
    # Checkpoints (allowed only on the saver path).
    "Save": _CHECKPOINT, "SaveV2": _CHECKPOINT, "SaveSlices": _CHECKPOINT,
    "Restore": _CHECKPOINT, "RestoreV2": _CHECKPOINT,
    "RestoreSlice": _CHECKPOINT, "MergeV2Checkpoints": _CHECKPOINT,
    # tf.data sources and sinks.
    "TFRecordDataset": _DATASET, "TFRecordDatasetV2": _DATASET,
    "TextLineDataset": _DATASET, "FixedLengthRecordDataset": _DATASET,
    "FixedLengthRecordDatasetV2": _DATASET, "LMDBDataset": _DATASET,
    "ExperimentalLMDBDataset": _DATASET, "CSVDataset": _DATASET,
    "CSVDatasetV2": _DATASET, "ExperimentalCSVDataset": _DATASET,
    "SaveDataset": _DATASET, "SaveDatasetV2": _DATASET,
    "LoadDataset": _DATASET, "SnapshotDataset": _DATASET,
    "SnapshotDatasetV2": _DATASET, "ExperimentalDatasetToTFRecord": _DATASET,
    "DatasetToTFRecord": _DATASET, "DistributedSave": _DATASET,
    "SqlDataset": _DB, "ExperimentalSqlDataset": _DB,
    # Summaries and debugging.
    "CreateSummaryFileWriter": _SUMMARY, "CreateSummaryDbWriter": _DB,
    "WriteSummary": _SUMMARY, "WriteScalarSummary": _SUMMARY,
    "WriteHistogramSummary": _SUMMARY, "WriteImageSummary": _SUMMARY,
    "WriteAudioSummary": _SUMMARY, "WriteGraphSummary": _SUMMARY,
    "WriteRawProtoSummary": _SUMMARY, "ImportEvent": _SUMMARY,
    "DebugIdentity": _DEBUG, "DebugIdentityV2": _DEBUG,
    "DebugIdentityV3": _DEBUG, "DebugNanCount": _DEBUG,
    "DebugNumericSummary": _DEBUG, "DebugNumericSummaryV2": _DEBUG,
    # Network.
    "RpcClient": _NETWORK, "RpcServer": _NETWORK,
    "RpcServerStart": _NETWORK, "RpcServerRegister": _NETWORK,
    "RpcCall": _NETWORK, "Rpc": _NETWORK, "TryRpc": _NETWORK,
    "RemoteCall": _NETWORK, "DataServiceDataset": _NETWORK,
    "DataServiceDatasetV2": _NETWORK, "DataServiceDatasetV3": _NETWORK,
    "DataServiceDatasetV4": _NETWORK, "RegisterDataset": _NETWORK,
    "RegisterDatasetV2": _NETWORK, "BigQueryReader": _NETWORK,
    "GenerateBigQueryReaderPartitions": _NETWORK,
    "CollectiveReduce": _NETWORK, "CollectiveReduceV2": _NETWORK,
    "CollectiveReduceV3": _NETWORK, "CollectiveGather": _NETWORK,
    "CollectiveGatherV2": _NETWORK, "CollectiveBcastSend": _NETWORK,
    "CollectiveBcastSendV2": _NETWORK, "CollectiveBcastRecv": _NETWORK,
    "CollectiveBcastRecvV2": _NETWORK, "CollectiveAllToAllV2": _NETWORK,
    "CollectiveAllToAllV3": _NETWORK, "_Send": _NETWORK, "_Recv": _NETWORK,
    "_HostSend": _NETWORK, "_HostRecv": _NETWORK,
    # Host code.
    "PyFunc": _CODE, "PyFuncStateless": _CODE, "EagerPyFunc": _CODE,
}
"""Op type -> why it is flagged (unless it is on an allowed path)."""

SAVER_OPS = frozenset({"Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2",
                       "RestoreSlice", "MergeV2Checkpoints"})
"""Checkpoint ops allowed on the saver_def's restore/save path."""

TABLE_FILE_OPS = frozenset({"InitializeTableFromTextFile",
                            "InitializeTableFromTextFileV2"})
"""Ops that read a vocabulary file: fine for the model's own assets."""

_FILE_ATTR_OPS = {"PrintV2": "output_stream", "DecodeProtoV2":
                  "descriptor_source", "EncodeProto": "descriptor_source"}


def _called_functions(node, library: Set[str]) -> List[str]:
  """Functions a node calls: through func attrs or as its op type."""
  called = [node.op] if node.op in library else []
  for value in node.attr.values():
    kind = value.WhichOneof("value")
    if kind == "func" and value.func.name in library:
      called.append(value.func.name)
    elif kind == "list":
      called.extend(f.name for f in value.list.func if f.name in library)
  return called


def _function_closure(roots: Iterable[str], calls: Dict[str, List[str]]
                      ) -> Set[str]:
  seen: Set[str] = set()
  stack = list(roots)
  while stack:
    name = stack.pop()
    if name in seen:
      continue
    seen.add(name)
    stack.extend(calls.get(name, ()))
  return seen


def _graph_closure(roots: Iterable[str], nodes: Dict[str, object]
                   ) -> Set[str]:
  seen: Set[str] = set()
  stack = [signatures_lib.node_name(r) for r in roots if r]
  while stack:
    name = stack.pop()
    if name in seen or name not in nodes:
      continue
    seen.add(name)
    stack.extend(signatures_lib.node_name(i) for i in nodes[name].input)
  return seen


def _string_attr(node, attr: str) -> str:
  value = node.attr.get(attr)
  if value is None or value.WhichOneof("value") != "s":
    return ""
  return value.s.decode("utf-8", "replace")


def _object_paths(meta_graph) -> Dict[str, str]:
  """Concrete function name -> object path (e.g. ``__call__``) in a TF2
  SavedModel's object graph."""
  graph = meta_graph.object_graph_def
  if not graph.nodes:
    return {}
  paths = {0: ""}
  queue = collections.deque([0])
  result: Dict[str, str] = {}
  while queue:
    node_id = queue.popleft()
    node = graph.nodes[node_id]
    kind = node.WhichOneof("kind")
    if kind == "function":
      for name in node.function.concrete_functions:
        result.setdefault(name, paths[node_id])
    elif kind == "bare_concrete_function":
      result.setdefault(node.bare_concrete_function.concrete_function_name,
                        paths[node_id])
    for child in node.children:
      if child.node_id in paths or not 0 <= child.node_id < len(graph.nodes):
        continue
      prefix = paths[node_id]
      paths[child.node_id] = (prefix + "." if prefix else "") + child.local_name
      queue.append(child.node_id)
  return result


def _scan_meta_graph(meta_graph) -> List[FlaggedOp]:
  from hub_adapter import integrity  # pylint: disable=g-import-not-at-top
  tags = signatures_lib.format_tags(meta_graph.meta_info_def.tags,
                                   empty="{}", quoted=False)
  graph = meta_graph.graph_def
  library = {f.signature.name: f for f in graph.library.function}
  names = set(library)
  nodes = {n.name: n for n in graph.node}
  calls = {name: sorted({c for n in f.node_def
                         for c in _called_functions(n, names)})
           for name, f in library.items()}

  saver = meta_graph.saver_def
  saver_nodes = _graph_closure(
      [saver.restore_op_name, saver.save_tensor_name,
       saver.filename_tensor_name], nodes)
  saver_functions = _function_closure(
      [c for n in saver_nodes for c in _called_functions(nodes[n], names)],
      calls)

  signature_nodes: Dict[str, Set[str]] = {}
  for key, sig in meta_graph.signature_def.items():
    roots = [t.name for t in sig.outputs.values()]
    roots += [t.coo_sparse.values_tensor_name for t in sig.outputs.values()]
    if key.startswith("__saved_model") or not roots:
      continue
    signature_nodes[key] = _graph_closure(roots, nodes)
  reached_by: Dict[str, Set[str]] = collections.defaultdict(set)
  for key, closure in signature_nodes.items():
    direct = [c for n in closure for c in _called_functions(nodes[n], names)]
    for fn in _function_closure(direct, calls):
      reached_by[fn].add(key)
  object_paths = _object_paths(meta_graph)
  asset_tensors = {signatures_lib.node_name(t) for _, t in
                   integrity.asset_file_defs(meta_graph) if t}

  found: List[FlaggedOp] = []

  def graph_where(node_name: str) -> str:
    sigs = sorted(k for k, c in signature_nodes.items() if node_name in c)
    where = f"graph of tags {tags}"
    if sigs:
      where += " (signature " + ", ".join(repr(s) for s in sigs) + ")"
    return where

  def function_where(fn: str) -> str:
    extra = []
    if fn in object_paths and object_paths[fn]:
      extra.append(f"object {object_paths[fn]!r}")
    if reached_by.get(fn):
      extra.append("signature " + ", ".join(
          repr(s) for s in sorted(reached_by[fn])))
    where = f"function {fn!r} in tags {tags}"
    return where + (" (" + "; ".join(extra) + ")" if extra else "")

  def check(node, where: str, on_saver_path: bool, is_asset_input) -> None:
    why = RISKY_OPS.get(node.op)
    if why is not None:
      if node.op in SAVER_OPS and on_saver_path:
        return
      found.append(FlaggedOp(node.op, node.name, where, why))
      return
    if node.op in TABLE_FILE_OPS:
      if len(node.input) > 1 and is_asset_input(node.input[1]):
        return
      found.append(FlaggedOp(node.op, node.name, where,
                             "reads a vocabulary file that is not one of the "
                             "model's assets"))
      return
    attr = _FILE_ATTR_OPS.get(node.op)
    if attr:
      target = _string_attr(node, attr)
      if target.startswith("file://") or (
          attr == "descriptor_source" and target and
          not target.startswith(("local://", "bytes://"))):
        found.append(FlaggedOp(node.op, node.name, where,
                               f"uses the file {target!r} ({attr})"))

  def graph_asset_input(tensor: str) -> bool:
    return signatures_lib.node_name(tensor) in asset_tensors

  for node in graph.node:
    check(node, graph_where(node.name), node.name in saver_nodes,
          graph_asset_input)

  for name, fn in library.items():
    args = {a.name for a in fn.signature.input_arg}
    inner = {n.name: n for n in fn.node_def}

    def fn_asset_input(tensor: str, args=args, inner=inner) -> bool:
      # Inside a function a table's file is fine when it comes in as an
      # argument (a captured asset), not when it is a constant path.
      source = signatures_lib.node_name(tensor)
      if source in args:
        return True
      node = inner.get(source)
      return node is not None and node.op == "Identity" and bool(
          node.input) and signatures_lib.node_name(node.input[0]) in args

    for node in fn.node_def:
      check(node, function_where(name), name in saver_functions,
            fn_asset_input)
  return found


def scan(path_or_info: Union[str, os.PathLike, ModelInfo], *,
         handle: Optional[str] = None) -> Tuple[FlaggedOp, ...]:
  """Lists the ops of a model that touch files, the network, or run code.

  Walks the graph of every tag set and every function of the function
  library; nothing is imported or run.

  Args:
    path_or_info: A model folder, or the ``ModelInfo`` of one.
    handle: The handle, for error messages.

  Returns:
    The flagged ops, in file order, without duplicates; empty when clean.

  Raises:
    ModelFormatError: saved_model.pb is missing or corrupt.
  """
  if isinstance(path_or_info, ModelInfo) and (
      path_or_info.saved_model is not None):
    saved_model = path_or_info.saved_model
  else:
    path = (path_or_info.path if isinstance(path_or_info, ModelInfo)
            else os.fspath(path_or_info))
    saved_model = reader.read_saved_model(path, handle)
  seen = set()
  result = []
  for meta_graph in saved_model.meta_graphs:
    for op in _scan_meta_graph(meta_graph):
      if op not in seen:
        seen.add(op)
        result.append(op)
  return tuple(result)


def refuse_if_unsafe(info_or_flagged: Union[ModelInfo, Sequence[FlaggedOp]],
                     handle: Optional[str] = None) -> None:
  """Raises when a model has flagged ops (``load(..., safe=True)``).

  Args:
    info_or_flagged: A ``ModelInfo`` (scanned now if ``flagged_ops`` is
      None) or the flagged ops themselves.
    handle: The handle, quoted in the error.

  Raises:
    UnsafeModelError: at least one op is flagged; the message lists each op,
      its node and where it is.
  """
  path = None
  if isinstance(info_or_flagged, ModelInfo):
    path = info_or_flagged.path
    flagged = info_or_flagged.flagged_ops
    if flagged is None:
      flagged = scan(info_or_flagged, handle=handle)
  else:
    flagged = tuple(info_or_flagged)
  if not flagged:
    return
  shown = list(flagged[:20])
  lines = [f"{op.op} (node {op.node!r}) in {op.where}: {op.why}"
           for op in shown]
  if len(flagged) > len(shown):
    lines.append(f"... and {len(flagged) - len(shown)} more")
  kinds = sorted({op.op for op in flagged})
  raise errors.UnsafeModelError(
      errors.compose(
          f"Refusing to load {handle or path!r} with safe=True: it has "
          f"{len(flagged)} op(s) that touch files, the network or run code "
          f"({', '.join(kinds)}).",
          "Loading or calling it could run them:\n    " + "\n    ".join(lines),
          "Load it only if you trust its source (safe=False), and inspect "
          "it first with `hub-adapter inspect HANDLE`.",
          {"handle": handle, "folder": path}),
      handle=handle, path=path, flagged_ops=tuple(flagged))


__all__ = ["scan", "refuse_if_unsafe", "RISKY_OPS", "SAVER_OPS",
           "TABLE_FILE_OPS"]
