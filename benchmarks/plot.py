"""A small log-log line plot written as PNG with the standard library only.

The benchmark environments have no matplotlib or Pillow, and installing one
into the shared tox environments would make tox rebuild them; a plot of a
few lines needs neither. Text uses a built-in 5x7 bitmap font.
"""
from __future__ import annotations

import math
import struct
import zlib
from typing import Dict, List, Sequence, Tuple

# 5x7 glyphs: seven rows, the low five bits of each row are the pixels.
_FONT = {
    " ": "00000000000000", "0": "0e1113151911 0e", "1": "040c040404040e",
    "2": "0e110102040 81f", "3": "1f020402011 10e", "4": "02060a121f0202",
    "5": "1f101e0101110e", "6": "0608101e11110e", "7": "1f010204080808",
    "8": "0e11110e11110e", "9": "0e11110f01020c", "A": "0e1111111f1111",
    "B": "1e11111e11111e", "C": "0e11101010110e", "D": "1c121111111 21c",
    "E": "1f10101e10101f", "F": "1f10101e101010", "G": "0e111017111 10f",
    "H": "1111111f111111", "I": "0e04040404040e", "J": "07020202021 20c",
    "K": "11121418141211", "L": "1010101010101f", "M": "111b1515111111",
    "N": "11111915131111", "O": "0e11111111110e", "P": "1e11111e101010",
    "Q": "0e11111115120d", "R": "1e11111e141211", "S": "0f10100e01011e",
    "T": "1f040404040404", "U": "1111111111110e", "V": "11111111110a04",
    "W": "1111111515150a", "X": "11110a040a1111", "Y": "1111110a040404",
    "Z": "1f01020408101f", "a": "00000e010f110f", "b": "10101619111 11e",
    "c": "00000e1010110e", "d": "01010d1311110f", "e": "00000e111f100e",
    "f": "0609081c080808", "g": "000f11110f010e", "h": "10101619111111",
    "i": "04000c0404040e", "j": "02000602021 20c", "k": "10101214181412",
    "l": "0c04040404040e", "m": "00001a15151111", "n": "00001619111111",
    "o": "00000e1111110e", "p": "00001e111e1010", "q": "00000d130f0101",
    "r": "00001619101010", "s": "00000e100e011e", "t": "08081c08080906",
    "u": "0000111111130d", "v": "0000111111 0a04", "w": "0000111115150a",
    "x": "0000110a040a11", "y": "00001111 0f010e", "z": "00001f0204081f",
    ".": "0000000000 0c0c", ",": "00000000 0c0408", "_": "0000000000001f",
    "-": "0000001f000000", "/": "00010204081000", "(": "02040808080402",
    ")": "08040202020408", ":": "000c0c000c0c00", "=": "00001f001f0000",
    "+": "0004041f040400", "%": "18190204081303", "[": "0e08080808080e",
    "]": "0e02020202020e", "*": "00040e1f0e0400", "?": "0e110102040004",
}
_GLYPHS = {ch: [int(code.replace(" ", "")[i:i + 2], 16) for i in range(0, 14, 2)]
           for ch, code in _FONT.items()}
SCALE = 2
CHAR_W = 6 * SCALE
CHAR_H = 8 * SCALE

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
          (148, 103, 189), (140, 86, 75)]
BLACK = (0, 0, 0)
GREY = (210, 210, 210)
WHITE = (255, 255, 255)


class Canvas:
  """An RGB raster with just the drawing the plot needs."""

  def __init__(self, width: int, height: int):
    self.width, self.height = width, height
    self.pixels = bytearray(WHITE * (width * height))

  def dot(self, x: int, y: int, color) -> None:
    if 0 <= x < self.width and 0 <= y < self.height:
      i = 3 * (y * self.width + x)
      self.pixels[i:i + 3] = bytes(color)

  def rect(self, x0, y0, x1, y1, color) -> None:
    for y in range(int(y0), int(y1) + 1):
      for x in range(int(x0), int(x1) + 1):
        self.dot(x, y, color)

  def line(self, x0, y0, x1, y1, color, width: int = 1) -> None:
    x0, y0, x1, y1 = int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    half = width // 2
    while True:
      for ox in range(-half, width - half):
        for oy in range(-half, width - half):
          self.dot(x0 + ox, y0 + oy, color)
      if x0 == x1 and y0 == y1:
        return
      e2 = 2 * err
      if e2 >= dy:
        err += dy
        x0 += sx
      if e2 <= dx:
        err += dx
        y0 += sy

  def text(self, x: int, y: int, s: str, color=BLACK, vertical=False) -> None:
    """Draws ``s`` with its top-left at (x, y); vertical reads bottom-up."""
    for n, ch in enumerate(s):
      rows = _GLYPHS.get(ch, _GLYPHS["?"])
      for r, bits in enumerate(rows):
        for c in range(5):
          if bits & (1 << (4 - c)):
            for i in range(SCALE):
              for j in range(SCALE):
                if vertical:
                  self.dot(x + r * SCALE + j,
                           y - n * CHAR_W - c * SCALE - i, color)
                else:
                  self.dot(x + n * CHAR_W + c * SCALE + i,
                           y + r * SCALE + j, color)

  def png(self) -> bytes:
    raw = b"".join(b"\x00" + bytes(self.pixels[3 * y * self.width:
                                               3 * (y + 1) * self.width])
                   for y in range(self.height))

    def chunk(kind: bytes, data: bytes) -> bytes:
      body = kind + data
      return (struct.pack(">I", len(data)) + body
              + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _decades(lo: float, hi: float) -> Tuple[float, float]:
  low = math.floor(math.log10(lo) + 1e-9)
  high = max(math.ceil(math.log10(hi) - 1e-9), low + 1)
  return 10.0 ** low, 10.0 ** high


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
  """Writes a log-log line plot of ``series`` ({label: [(x, y)]}) to path."""
  width, height = 960, 560
  left, right, top, bottom = 130, 290, 56, 80
  canvas = Canvas(width, height)
  points = [p for pts in series.values() for p in pts if p[0] > 0 and p[1] > 0]
  if not points:
    canvas.text(left, height // 2, "no data")
    with open(path, "wb") as f:
      f.write(canvas.png())
    return
  x_lo, x_hi = _decades(min(p[0] for p in points), max(p[0] for p in points))
  y_lo, y_hi = _decades(min(p[1] for p in points), max(p[1] for p in points))
  plot_w, plot_h = width - left - right, height - top - bottom

  def px(x):
    return left + (math.log10(x) - math.log10(x_lo)) / (
        math.log10(x_hi) - math.log10(x_lo)) * plot_w

  def py(y):
    return top + plot_h - (math.log10(y) - math.log10(y_lo)) / (
        math.log10(y_hi) - math.log10(y_lo)) * plot_h

  for e in range(round(math.log10(x_lo)), round(math.log10(x_hi)) + 1):
    x = px(10 ** e)
    canvas.line(x, top, x, top + plot_h, GREY)
    text = _label(10.0 ** e, x_units)
    canvas.text(int(x - len(text) * CHAR_W / 2), top + plot_h + 8, text)
  for e in range(round(math.log10(y_lo)), round(math.log10(y_hi)) + 1):
    y = py(10 ** e)
    canvas.line(left, y, left + plot_w, y, GREY)
    text = _label(10.0 ** e, y_units)
    canvas.text(left - 8 - len(text) * CHAR_W, int(y - CHAR_H / 2), text)
  canvas.line(left, top, left, top + plot_h, BLACK)
  canvas.line(left, top + plot_h, left + plot_w, top + plot_h, BLACK)
  canvas.line(left, top, left + plot_w, top, BLACK)
  canvas.line(left + plot_w, top, left + plot_w, top + plot_h, BLACK)
  canvas.text(left, 16, title)
  canvas.text(left + plot_w // 2 - len(xlabel) * CHAR_W // 2,
              height - 32, xlabel)
  canvas.text(8, top + plot_h // 2 + len(ylabel) * CHAR_W // 2, ylabel,
              vertical=True)
  for n, (label, pts) in enumerate(series.items()):
    color = COLORS[n % len(COLORS)]
    pts = sorted(p for p in pts if p[0] > 0 and p[1] > 0)
    for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
      canvas.line(px(xa), py(ya), px(xb), py(yb), color, width=2)
    for x, y in pts:
      canvas.rect(px(x) - 3, py(y) - 3, px(x) + 3, py(y) + 3, color)
    ly = top + 10 + n * (CHAR_H + 10)
    canvas.rect(left + plot_w + 16, ly + 2, left + plot_w + 36, ly + 10, color)
    canvas.text(left + plot_w + 44, ly, label[:19])
  with open(path, "wb") as f:
    f.write(canvas.png())
