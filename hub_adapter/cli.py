"""The ``hub-adapter`` command line: matrix, inspect, fetch, convert.

``-v`` shows hub_adapter's ``absl.logging`` messages (downloads, waits for
another process's download, retries, fallbacks) on stderr; ``-vv`` adds the
DEBUG ones (cache hits).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

import hub_adapter
from hub_adapter import errors


def _matrix(args: argparse.Namespace) -> int:
  from hub_adapter import matrix  # pylint: disable=g-import-not-at-top
  results = matrix.run_all(args.keep)
  if args.json:
    print(json.dumps([dict(vars(r), official=r.official, verdict=r.verdict)
                      for r in results], indent=1))
  else:
    print(matrix.render(results))
  return 1 if any(r.verdict == "DISAGREE" for r in results) else 0


def _inspect(args: argparse.Namespace) -> int:
  from hub_adapter import inspection  # pylint: disable=g-import-not-at-top
  info = inspection.inspect(args.handle)
  if args.json:
    print(json.dumps(inspection.to_json(info), indent=1, sort_keys=True))
  else:
    print(inspection.describe(info))
  return 0


def _fetch(args: argparse.Namespace) -> int:
  from hub_adapter import handles  # pylint: disable=g-import-not-at-top
  print(handles.fetch(args.handle, progress=not args.quiet))
  return 0


def _convert(args: argparse.Namespace) -> int:
  from hub_adapter import conversion  # pylint: disable=g-import-not-at-top
  print(conversion.convert(args.source, args.destination,
                            overwrite=args.overwrite))
  return 0


def build_parser() -> argparse.ArgumentParser:
  """Returns the argument parser of ``hub-adapter``."""
  parser = argparse.ArgumentParser(
      prog="hub-adapter",
      description="Load, fine-tune and create TF Hub models in TF2 and TF1 "
                  "compat mode.")
  parser.add_argument("--version", action="version",
                      version=f"%(prog)s {hub_adapter.__version__}")
  parser.add_argument("-v", "--verbose", action="count", default=0,
                      help="log what happens (-v: INFO, -vv: DEBUG)")
  sub = parser.add_subparsers(dest="command", required=True)
  p = sub.add_parser(
      "matrix", help="build tiny models of both formats, run every cell of "
                     "the support table in both modes and print the table")
  p.add_argument("--keep", metavar="DIR", default=None,
                 help="build the tiny models in DIR and keep them")
  p.add_argument("--json", action="store_true", help="print JSON")
  p.set_defaults(run=_matrix)
  p = sub.add_parser("inspect", help="describe a model without running it")
  p.add_argument("handle")
  p.add_argument("--json", action="store_true", help="print JSON")
  p.set_defaults(run=_inspect)
  p = sub.add_parser("fetch", help="download a handle into the cache")
  p.add_argument("handle")
  p.add_argument("--quiet", action="store_true",
                 help="no progress (a bar on a terminal, lines otherwise)")
  p.set_defaults(run=_fetch)
  p = sub.add_parser(
      "convert", help="write a TF1 Hub module as a TF2 SavedModel that "
                      "fine-tunes in TF2")
  p.add_argument("source", help="handle or folder of a TF1 Hub module")
  p.add_argument("destination", help="folder for the TF2 SavedModel")
  p.add_argument("--overwrite", action="store_true",
                 help="replace an existing destination folder")
  p.set_defaults(run=_convert)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  """Runs the CLI.

  Args:
    argv: Arguments without the program name (default: ``sys.argv[1:]``).

  Returns:
    The exit status: 0 on success, 1 when a matrix cell disagrees, 2 on a
    hub_adapter error (its message goes to stderr).
  """
  args = build_parser().parse_args(argv)
  if args.verbose:
    from absl import logging  # pylint: disable=g-import-not-at-top
    logging.use_absl_handler()
    logging.set_verbosity(logging.DEBUG if args.verbose > 1 else logging.INFO)
  # TensorFlow's C++ start-up chatter would bury the CLI's own output.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  try:
    return args.run(args)
  except errors.HubAdapterError as e:
    print(f"hub-adapter {args.command}: {type(e).__name__}: {e}",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
