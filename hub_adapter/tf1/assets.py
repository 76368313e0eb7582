"""Asset constants of a TF1 Hub module in their on-disk form.

On disk, each asset constant of a module's graph holds a placeholder and is
listed in the meta graph's ``saved_model_assets`` collection under a file name
inside ``assets/``; the loader points it at that file. Both ``creation``
(building a spec) and ``writer`` (exporting one) need this rewrite.
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, Mapping, Optional

from hub_adapter import runtime
from hub_adapter.tf1 import hub_protos


def assets_to_disk_form(saved_model, sources: Optional[Mapping[str, str]] = None
                        ) -> Dict[str, str]:
  """Rewrites asset constants to the on-disk form, in place.

  Each string constant listed in a meta graph's ``asset_filepaths``
  collection but not yet in its ``saved_model_assets`` collection holds the
  path of its file; it gets a file name inside ``assets/``, is listed in
  ``saved_model_assets`` under that name, and its value becomes the
  placeholder the loader replaces. The same source file gets the same name
  in every meta graph; different files with one base name get distinct names.

  Args:
    saved_model: A ``SavedModel`` proto, modified in place.
    sources: Asset names already in use -> their source files.

  Returns:
    Every asset name -> source file, ``sources`` included.
  """
  tf = runtime.tf()
  from tensorflow.core.protobuf import meta_graph_pb2  # pylint: disable=g-import-not-at-top
  names_by_source: Dict[str, str] = {
      source: name for name, source in (sources or {}).items()}
  for meta_graph in saved_model.meta_graphs:
    collection = meta_graph.collection_def.get(hub_protos.ASSET_FILEPATHS)
    if collection is None:
      continue
    listed = set()
    for any_proto in meta_graph.collection_def[hub_protos.ASSETS_KEY].any_list.value:
      asset = meta_graph_pb2.AssetFileDef()
      any_proto.Unpack(asset)
      listed.add(asset.tensor_info.name)
    nodes = {n.name: n for n in meta_graph.graph_def.node}
    for tensor in sorted(set(collection.node_list.value) - listed):
      node = nodes[tensor.rsplit(":", 1)[0]]
      value = node.attr["value"].tensor.string_val
      source = _absolute(tf.compat.as_str_any(value[0]))
      if source not in names_by_source:
        names_by_source[source] = _unique_name(
            os.path.basename(source), names_by_source.values())
      value[0] = hub_protos.ASSET_PLACEHOLDER
      asset = meta_graph_pb2.AssetFileDef(filename=names_by_source[source])
      asset.tensor_info.name = tensor
      meta_graph.collection_def[hub_protos.ASSETS_KEY].any_list.value.add().Pack(asset)
    if not meta_graph.collection_def[hub_protos.ASSETS_KEY].any_list.value:
      del meta_graph.collection_def[hub_protos.ASSETS_KEY]
  return {name: source for source, name in names_by_source.items()}


def _absolute(path: str) -> str:
  return path if "://" in path else os.path.abspath(path)


def _unique_name(basename: str, taken: Iterable[str]) -> str:
  taken = set(taken)
  if basename not in taken:
    return basename
  stem, ext = os.path.splitext(basename)
  index = 1
  while f"{stem}_{index}{ext}" in taken:
    index += 1
  return f"{stem}_{index}{ext}"
