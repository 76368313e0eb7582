"""What ``inspect()`` finds in a model folder, as plain frozen data."""
from __future__ import annotations

import dataclasses
from typing import Any, FrozenSet, Mapping, Optional, Tuple

from hub_adapter.support import Format


@dataclasses.dataclass(frozen=True)
class TensorInfo:
  """One input or output of a signature.

  Attributes:
    name: The signature's key for this tensor.
    dtype: The dtype name, e.g. ``"float32"`` or ``"string"``.
    shape: Dimensions with None for unknown ones; None for unknown rank.
    is_composite: True for sparse or ragged tensors.
    kind: ``"dense"``, ``"sparse"`` (a ``tf.SparseTensor``), ``"ragged"``
      (a ``tf.RaggedTensor``) or ``"composite"`` (another composite type).
    ragged_rank: The ragged rank of a ragged tensor, else None.
    row_splits_dtype: The row-partition dtype of a ragged tensor
      (``"int64"`` or ``"int32"``), else None.
  """
  name: str
  dtype: str
  shape: Optional[Tuple[Optional[int], ...]]
  is_composite: bool = False
  kind: str = "dense"
  ragged_rank: Optional[int] = None
  row_splits_dtype: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
  """A named signature of one tag set."""
  name: str
  inputs: Mapping[str, TensorInfo]
  outputs: Mapping[str, TensorInfo]


@dataclasses.dataclass(frozen=True)
class VariableInfo:
  """A variable stored in ``variables/`` (from ``variables.index``).

  ``trainable`` comes from the graph's collections (TF1) or the saved object
  graph (TF2); None when unknown.
  """
  name: str
  dtype: str
  shape: Tuple[int, ...]
  bytes: int
  trainable: Optional[bool] = None


@dataclasses.dataclass(frozen=True)
class FlaggedOp:
  """An op worth a warning: it touches files, the network, or runs code.

  Attributes:
    op: The op type, e.g. ``"ReadFile"``.
    node: The node name.
    where: ``"signature NAME"``, ``"function NAME"`` or ``"graph"`` with the
      tag set.
    why: What the op can do.
  """
  op: str
  node: str
  where: str
  why: str


@dataclasses.dataclass(frozen=True)
class ModelInfo:
  """What a model folder holds, read from its protos without running them.

  Attributes:
    path: The folder.
    format: ``Format.TF1_HUB`` or ``Format.TF2_SAVED_MODEL``.
    module_format_version: ``ModuleDef.format`` of a TF1 Hub module, else None.
    required_features: ``ModuleDef.required_features`` of a TF1 Hub module.
    tag_sets: Every meta graph's tag set, in file order.
    signatures: Per tag set, signature name -> :class:`SignatureInfo`.
    has_call: True when a TF2 SavedModel's root object has ``__call__``.
    call_accepts_training: Whether that ``__call__`` takes ``training``
      (None when unknown or absent).
    variables: Variables listed in ``variables/variables.index``.
    assets: Asset file names, relative to ``assets/``.
    attached_messages: Keys of messages attached to a TF1 Hub module.
    flagged_ops: Ops flagged as unsafe, or None when not scanned.
    attachments: Per tag set, attached message key -> serialized bytes (TF1
      Hub modules; what ``ModuleSpec.get_attached_message`` parses).
    op_libraries: Add-on libraries whose ops the model uses, and ops no
      known library provides (``hub_adapter.op_libraries.OpLibraryNeed``
      values), or None when not looked up (``inspect()`` looks them up).
    saved_model: The parsed ``SavedModel`` proto the info was read from
      (shared: copy it before changing it), so later steps of a load do not
      parse ``saved_model.pb`` again; None when built by hand.
    bundle_index: The parsed ``variables.index``
      (``proto_readers.BundleIndex``), or None when absent or not read.
  """
  path: str
  format: Format
  module_format_version: Optional[int] = None
  required_features: Tuple[str, ...] = ()
  tag_sets: Tuple[FrozenSet[str], ...] = ()
  signatures: Mapping[FrozenSet[str], Mapping[str, SignatureInfo]] = (
      dataclasses.field(default_factory=dict))
  has_call: bool = False
  call_accepts_training: Optional[bool] = None
  variables: Tuple[VariableInfo, ...] = ()
  assets: Tuple[str, ...] = ()
  attached_messages: Tuple[str, ...] = ()
  flagged_ops: Optional[Tuple[FlaggedOp, ...]] = None
  attachments: Mapping[FrozenSet[str], Mapping[str, bytes]] = (
      dataclasses.field(default_factory=dict))
  op_libraries: Optional[Tuple[Any, ...]] = None
  saved_model: Any = dataclasses.field(default=None, repr=False,
                                       compare=False)
  bundle_index: Any = dataclasses.field(default=None, repr=False,
                                        compare=False)

  @property
  def variable_count(self) -> int:
    return len(self.variables)

  @property
  def variable_bytes(self) -> int:
    return sum(v.bytes for v in self.variables)

  @property
  def default_tags(self) -> FrozenSet[str]:
    """The tag set used for inference: the empty set if present, else
    ``{"serve"}`` if present, else the only one."""
    for candidate in (frozenset(), frozenset({"serve"})):
      if candidate in self.tag_sets:
        return candidate
    return self.tag_sets[0] if self.tag_sets else frozenset()

  @property
  def train_tags(self) -> Optional[FrozenSet[str]]:
    """``{"train"}`` when the module has that tag set, else None."""
    train = frozenset({"train"})
    return train if train in self.tag_sets else None

  def signatures_for(self, tags: Optional[FrozenSet[str]] = None
                     ) -> Mapping[str, SignatureInfo]:
    """The signatures of one tag set (default: :attr:`default_tags`)."""
    return self.signatures.get(
        self.default_tags if tags is None else frozenset(tags), {})
