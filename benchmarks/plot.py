"""The benchmark's log-log line plot, drawn with matplotlib.

matplotlib is a benchmark-only dependency: the ``bench`` extra of setup.cfg
(``pip install '.[bench]'``), not a runtime dependency of hub_adapter. It is
imported when a plot is drawn, so ``benchmarks/run.py`` and its sections run
without it until the end; then a missing matplotlib is said plainly.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

SIZE_INCHES = (9.6, 5.6)
DPI = 100


def _matplotlib():
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "The benchmark plot needs matplotlib: pip install '.[bench]' (or "
        "matplotlib) in the benchmark environment.") from e
  matplotlib.use("Agg")  # Files only: no display, no GUI toolkit.
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top
  return pyplot, ticker


def _label(value: float, unit_labels: Sequence[Tuple[float, str]]) -> str:
  """Formats a tick with the largest unit it reaches (else the smallest)."""
  for scale, unit in unit_labels:
    if value >= scale * (1 - 1e-9):
      v = value / scale
      return (f"{v:.0f}" if v >= 1 else f"{v:.4g}") + unit
  scale, unit = unit_labels[-1]
  return f"{value / scale:.4g}{unit}"


def loglog(path: str, series: Dict[str, List[Tuple[float, float]]],
           title: str, xlabel: str, ylabel: str,
           x_units=((1.0, ""),),
           y_units=((1.0, " s"), (1e-3, " ms"), (1e-6, " us"))) -> None:
  """Writes a log-log line plot of ``series`` ({label: [(x, y)]}) to path.

  Points with a coordinate <= 0 cannot be shown on log axes and are left
  out; with no point left the figure says "no data". The format follows the
  file name's extension (``.png``, ``.svg``, ``.pdf``).
  """
  pyplot, ticker = _matplotlib()
  figure, axes = pyplot.subplots(figsize=SIZE_INCHES, dpi=DPI)
  try:
    drawn = 0
    for label, points in series.items():
      points = sorted(p for p in points if p[0] > 0 and p[1] > 0)
      if not points:
        continue
      xs, ys = zip(*points)
      axes.plot(xs, ys, marker="s", markersize=4, linewidth=2, label=label)
      drawn += 1
    axes.set_title(title, loc="left")
    if not drawn:
      axes.set_axis_off()
      axes.text(0.5, 0.5, "no data", ha="center", va="center",
                transform=axes.transAxes)
    else:
      axes.set_xscale("log")
      axes.set_yscale("log")
      axes.set_xlabel(xlabel)
      axes.set_ylabel(ylabel)
      axes.xaxis.set_major_formatter(
          ticker.FuncFormatter(lambda v, _: _label(v, x_units)))
      axes.yaxis.set_major_formatter(
          ticker.FuncFormatter(lambda v, _: _label(v, y_units)))
      axes.grid(True, which="major", color="#d2d2d2")
      axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  frameon=False)
    figure.tight_layout()
    figure.savefig(path)
  finally:
    pyplot.close(figure)
