"""Small, real baseline JPEG snapshots, encoded without Pillow.

Frigate publishes raw JPEG bytes as snapshots, so the emulator must too, and consumers
may decode them. Pillow is not a dependency, and a fixed file would look the same for
every event, so this module hand-encodes a tiny image: a dark scene with a coloured box
where the object is. Every 8x8 block is one flat colour, which makes each block a DC
coefficient followed by end-of-block: a valid baseline JFIF (SOF0, 4:4:4 YCbCr, Huffman
tables from ITU-T T.81 Annex K for DC, a one-symbol table for AC) that any decoder reads,
in about a hundred lines instead of a DCT encoder.
"""

from __future__ import annotations

import struct

__all__ = ["LABEL_COLOURS", "encode_blocks", "snapshot"]

RGB = tuple[int, int, int]

LABEL_COLOURS: dict[str, RGB] = {
    "person": (40, 200, 60),
    "fire": (255, 110, 0),
    "smoke": (200, 200, 200),
}
_DEFAULT_COLOUR: RGB = (60, 120, 230)
_BACKGROUND: RGB = (50, 55, 60)

# ITU-T T.81 Table K.1, luminance quantisation (natural order). Only [0] matters here
# (every AC coefficient is zero) but a real table keeps the file ordinary.
_QUANT = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
# ITU-T T.81 Table K.3: luminance DC code lengths (count per length 1..16) and symbols.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALS = tuple(range(12))
# AC table with the single symbol 0x00 (EOB), coded "0": all we ever emit.
_AC_BITS = (1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
_AC_VALS = (0x00,)


def _zigzag() -> list[tuple[int, int]]:
    """(row, col) of each coefficient in zigzag order."""
    return sorted(
        ((r, c) for r in range(8) for c in range(8)),
        key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else rc[1]),
    )


def _huffman_codes(bits: tuple[int, ...], vals: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """Canonical codes (T.81 Annex C): symbol -> (code, length)."""
    codes: dict[int, tuple[int, int]] = {}
    code = 0
    k = 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


_DC_CODES = _huffman_codes(_DC_BITS, _DC_VALS)
_EOB = _huffman_codes(_AC_BITS, _AC_VALS)[0x00]


class _BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self._acc = 0
        self._n = 0

    def write(self, value: int, length: int) -> None:
        self._acc = (self._acc << length) | (value & ((1 << length) - 1))
        self._n += length
        while self._n >= 8:
            self._n -= 8
            byte = (self._acc >> self._n) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0x00)  # byte stuffing
        self._acc &= (1 << self._n) - 1

    def flush(self) -> bytes:
        if self._n:
            self.write((1 << (8 - self._n)) - 1, 8 - self._n)  # pad with 1 bits
        return bytes(self.out)


def _ycbcr(rgb: RGB) -> tuple[float, float, float]:
    r, g, b = rgb
    return (
        0.299 * r + 0.587 * g + 0.114 * b,
        128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
    )


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(body) + 2) + body


def encode_blocks(width: int, height: int, blocks: list[list[RGB]]) -> bytes:
    """Encode an image given as rows of 8x8 flat-colour blocks (covering width x height)."""
    rows, cols = (height + 7) // 8, (width + 7) // 8
    if not (0 < width <= 65535 and 0 < height <= 65535):
        raise ValueError(f"bad JPEG size {width}x{height}")
    if len(blocks) != rows or any(len(row) != cols for row in blocks):
        raise ValueError(f"need {rows}x{cols} blocks for {width}x{height}")
    zz = _zigzag()
    dqt = bytes([0x00]) + bytes(_QUANT[r][c] for r, c in zz)
    q0 = _QUANT[0][0]
    jfif = b"JFIF\x00" + struct.pack(">BBBHHBB", 1, 1, 0, 1, 1, 0, 0)
    sof = struct.pack(">BHHB", 8, height, width, 3) + bytes([1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0])
    dht = (
        bytes([0x00, *_DC_BITS, *_DC_VALS])  # class 0 (DC), table 0
        + bytes([0x10, *_AC_BITS, *_AC_VALS])  # class 1 (AC), table 0
    )
    sos = bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0])
    bits = _BitWriter()
    previous = [0, 0, 0]
    for row in blocks:
        for rgb in row:
            for comp, sample in enumerate(_ycbcr(rgb)):
                dc = round(8 * (sample - 128) / q0)
                diff = dc - previous[comp]
                previous[comp] = dc
                size = abs(diff).bit_length()
                code, length = _DC_CODES[size]
                bits.write(code, length)
                if size:
                    bits.write(diff if diff > 0 else diff - 1, size)
                bits.write(*_EOB)
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, jfif),
            _segment(0xDB, dqt),
            _segment(0xC0, sof),
            _segment(0xC4, dht),
            _segment(0xDA, sos),
            bits.flush(),
            b"\xff\xd9",
        )
    )


def snapshot(
    label: str,
    box: tuple[float, float, float, float] = (0.4, 0.3, 0.6, 0.8),
    *,
    width: int = 128,
    height: int = 72,
) -> bytes:
    """A scene with the object's box (fractions of the frame: x1, y1, x2, y2) in its colour."""
    colour = LABEL_COLOURS.get(label, _DEFAULT_COLOUR)
    rows, cols = (height + 7) // 8, (width + 7) // 8
    x1, y1, x2, y2 = (int(box[0] * cols), int(box[1] * rows), box[2] * cols, box[3] * rows)
    blocks = [
        [
            colour if x1 <= c < max(x2, x1 + 1) and y1 <= r < max(y2, y1 + 1) else _BACKGROUND
            for c in range(cols)
        ]
        for r in range(rows)
    ]
    return encode_blocks(width, height, blocks)
