"""Evaluates a hub_adapter-created TF1 Hub module with tensorflow_hub itself.

Run by tests/tf1/test_interop.py in another interpreter (so that another
TensorFlow and tensorflow_hub can be used than the test's own):

  python interop_check.py hub_module MODULE_DIR INPUTS.npz
      tensorflow_hub's ``hub.Module`` in TF1 compat mode (tensorflow_hub
      0.15 on TF 2.15), for both graph variants;
  python interop_check.py hub_load MODULE_DIR INPUTS.npz
      ``hub.load(path, tags=...).signatures`` in TF2.

It prints one line, ``INTEROP_JSON <json>``, holding the results of
``created_modules.evaluate_module`` or ``evaluate_signatures`` per variant
(keys "train" and "default"), plus the versions that produced them.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import created_modules  # pylint: disable=g-import-not-at-top,wrong-import-position

VARIANTS = {"train": ["train"], "default": []}


def main(argv):
  api, path, inputs_path = argv[1:4]
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
  if api == "hub_module":
    tf.compat.v1.disable_v2_behavior()
  hub = import_tensorflow_hub()
  data = created_modules.read_inputs(inputs_path)
  results = {}
  for key, tags in VARIANTS.items():
    if api == "hub_module":
      results[key] = created_modules.evaluate_module(hub.Module, path, data,
                                                     tags)
    elif api == "hub_load":
      results[key] = created_modules.evaluate_signatures(hub.load, path, data,
                                                         tags)
    else:
      raise SystemExit(f"unknown api {api!r}; use hub_module or hub_load")
  report = {"tensorflow": tf.__version__, "tensorflow_hub": hub.__version__,
            "api": api, "results": created_modules.to_json(results)}
  print("INTEROP_JSON " + json.dumps(report))


if __name__ == "__main__":
  main(sys.argv)
