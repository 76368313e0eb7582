"""Test session set-up shared by every test.

Two kinds of pytest session run per stack (see tox.ini):
- the TF2 session (default) runs tests not marked ``tf1_compat``;
- the TF1 compat session (``--hub-adapter-mode=tf1_compat``) calls
  ``tf.compat.v1.disable_v2_behavior()`` before any test and runs only tests
  marked ``tf1_compat``.

Tests that need a particular stack say so with
``@pytest.mark.requires("estimator" | "keras3" | "tf_keras" | "tf215" |
"tf221" | "hub_module")``; elsewhere they are deselected (reported as
deselected, never as skipped).
"""
import os

import pytest


REQUIREMENTS = ("estimator", "keras3", "tf_keras", "tf215", "tf221",
                "hub_module", "jax")


def pytest_addoption(parser):
  parser.addoption(
      "--hub-adapter-mode", choices=("tf2", "tf1_compat"), default="tf2",
      help="tf1_compat calls tf.compat.v1.disable_v2_behavior() first")


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "tf1_compat: runs only in the TF1 compat mode session")
  config.addinivalue_line(
      "markers", "requires(*what): runs only where the stack has all of "
      + ", ".join(REQUIREMENTS))
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if config.getoption("--hub-adapter-mode") == "tf1_compat":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.compat.v1.disable_v2_behavior()


def _stack_has(what: str) -> bool:
  from hub_adapter import runtime  # pylint: disable=g-import-not-at-top
  if what == "estimator":
    return runtime.has_estimator()
  if what == "tf215":
    return runtime.tf_version() < (2, 16)
  if what == "tf221":
    return runtime.tf_version() >= (2, 16)
  if what in ("keras3", "jax"):
    # Keras 3 with its TensorFlow backend ("keras3") or its JAX backend
    # ("jax"): the backend as Keras picks it (KERAS_BACKEND, else
    # keras.json), read without importing keras.
    import json  # pylint: disable=g-import-not-at-top
    keras3 = (runtime.tf_version() >= (2, 16)
              and not runtime.legacy_keras_requested())
    backend = os.environ.get("KERAS_BACKEND")
    if not backend:
      config = os.path.join(
          os.environ.get("KERAS_HOME")
          or os.path.join(os.path.expanduser("~"), ".keras"), "keras.json")
      try:
        with open(config) as f:
          backend = json.load(f).get("backend")
      except (OSError, ValueError):
        backend = None
    backend = backend or "tensorflow"
    if what == "keras3":
      return keras3 and backend == "tensorflow"
    import importlib.util  # pylint: disable=g-import-not-at-top
    return (keras3 and backend == "jax"
            and importlib.util.find_spec("jax") is not None)
  if what == "tf_keras":
    return runtime.tf_version() < (2, 16) or runtime.legacy_keras_requested()
  if what == "hub_module":
    from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
    return hasattr(import_tensorflow_hub(), "Module")
  raise ValueError(f"unknown requirement {what!r}; known: {REQUIREMENTS}")


def pytest_collection_modifyitems(config, items):
  keep, drop = [], []
  for item in items:
    wanted = True
    for marker in item.iter_markers("requires"):
      if not all(_stack_has(w) for w in marker.args):
        wanted = False
    (keep if wanted else drop).append(item)
  if drop:
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


@pytest.fixture(autouse=True)
def _fresh_graph(request):
  """In the TF1 compat session every test starts with an empty graph."""
  if request.config.getoption("--hub-adapter-mode") == "tf1_compat":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.compat.v1.reset_default_graph()
  yield


def pytest_sessionstart(session):
  """Stops the run once, with the command that builds them, if the test
  models are missing (instead of an error in every module that reads them)."""
  import fixtures  # pylint: disable=g-import-not-at-top
  missing = fixtures.missing_parts()
  if missing:
    raise pytest.UsageError(
        f"The test models {', '.join(missing)} are not built in "
        f"{fixtures.models_root()}. {fixtures.BUILD_HINT}")


@pytest.fixture(scope="session")
def shared_fixtures():
  """The project's built test models (:class:`fixtures.ModelSet`)."""
  import fixtures  # pylint: disable=g-import-not-at-top
  return fixtures.ModelSet.locate()
