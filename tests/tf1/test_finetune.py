"""Fine-tuning a TF1 Hub module reproduces tensorflow_hub 0.15's record.

The manifest's ``finetune`` record of ``tf1_image_feature_vector`` was made
with ``hub.Module(path, trainable=True, tags={"train"})`` on the ``default``
signature: loss ``mean(square(out)) + add_n(REGULARIZATION_LOSSES)``, one
``GradientDescentOptimizer(0.1)`` step under the UPDATE_OPS as control
dependencies. The same procedure with our Module (and through
``hub_adapter.load(..., trainable=True)`` with ``training=True``) must give
the same losses and variable values before and after the step.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import fixtures
from hub_adapter.tf1.module import Module

pytestmark = pytest.mark.tf1_compat

NAME = "tf1_image_feature_vector"
SHARED = fixtures.locate()
RECORD = SHARED.entry(NAME)["finetune"]


def _golden():
  return SHARED.golden(NAME)


def _run_step(apply_fn, variable_map):
  """Runs the recorded procedure; returns what the record holds."""
  golden = _golden()
  images = tf.constant(golden[RECORD["input"]["key"]])
  outputs = apply_fn(images)
  keys = tf.compat.v1.GraphKeys
  losses = tf.compat.v1.losses.get_regularization_losses()
  loss = tf.reduce_mean(tf.square(outputs)) + tf.add_n(losses)
  update_ops = tf.compat.v1.get_collection(keys.UPDATE_OPS)
  with tf.control_dependencies(update_ops):
    train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
  trainable = sorted(v.op.name.split("/", 1)[1]
                     for v in tf.compat.v1.trainable_variables())
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    before = session.run(variable_map)
    loss_before = session.run(loss)
    session.run(train_op)
    after = session.run(variable_map)
    loss_after = session.run(loss)
  return {"before": before, "after": after, "loss_before": loss_before,
          "loss_after": loss_after, "trainable": trainable,
          "num_update_ops": len(update_ops), "num_losses": len(losses)}


def _check(result):
  golden = _golden()
  tol = RECORD["tolerance"]
  assert result["num_update_ops"] == RECORD["num_update_ops"]
  assert result["num_losses"] == RECORD["num_regularization_losses"]
  assert result["trainable"] == sorted(RECORD["trainable_variables"])
  np.testing.assert_allclose(result["loss_before"], RECORD["loss_before"],
                             **tol)
  np.testing.assert_allclose(result["loss_after"], RECORD["loss_after"],
                             **tol)
  assert result["loss_after"] < result["loss_before"]
  for when in ("before", "after"):
    spec = RECORD[f"variables_{when}"]
    assert sorted(result[when]) == sorted(spec)
    for name, entry in spec.items():
      np.testing.assert_allclose(result[when][name], golden[entry["key"]],
                                 err_msg=f"{when} {name}", **tol)
  changed = sorted(n for n in RECORD["variables_before"]
                   if not np.array_equal(result["before"][n],
                                         result["after"][n]))
  assert changed == sorted(RECORD["changed_variables"])


def test_module_finetune_step_matches_record():
  module = Module(SHARED.path(NAME), trainable=True,
                  tags=set(["train"]))
  _check(_run_step(lambda x: module(x, signature=RECORD["signature"]),
                   module.variable_map))


def test_load_finetune_step_matches_record():
  import hub_adapter
  model = hub_adapter.load(SHARED.path(NAME), trainable=True,
                           signature=RECORD["signature"])
  assert model.raw.tags == frozenset({"train"})
  result = _run_step(lambda x: model(x, training=True), model.variable_map)
  assert len(model.update_ops) == RECORD["num_update_ops"]
  assert len(model.regularization_losses) == (
      RECORD["num_regularization_losses"])
  _check(result)


def test_frozen_module_does_not_train():
  """trainable=False: no trainable variables, so nothing to minimize."""
  module = Module(SHARED.path(NAME), tags={"train"})
  golden = _golden()
  out = module(tf.constant(golden[RECORD["input"]["key"]]))
  assert tf.compat.v1.trainable_variables() == []
  assert tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS) == []
  assert tf.compat.v1.losses.get_regularization_losses() == []
  with pytest.raises(ValueError, match="No variables to optimize"):
    tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(
        tf.reduce_mean(out))
