"""The chat page's icon, ``/favicon.ico``: a speech bubble, drawn here as a 16x16 ICO.

Browsers ask for ``/favicon.ico`` on every page whether or not the page names an icon; an
ICO is the one format every browser takes there. The image is a few rectangles, so it is
drawn in code (32-bit BGRA with an alpha channel, in the ICO's BMP layout) instead of kept as
a binary file.
"""

from __future__ import annotations

import functools
import struct

SIZE = 16  # pixels, square
BUBBLE = (0x0B, 0x57, 0xD0)  # RGB: the page's accent colour (--accent in chat.css)
DOTS = (0xFF, 0xFF, 0xFF)


def _pixel(x: int, y: int) -> tuple[int, int, int] | None:
    """The colour at column ``x``, row ``y`` (row 0 at the top), None where transparent."""
    in_body = 1 <= x <= 14 and 2 <= y <= 11 and not ((x in (1, 14)) and (y in (2, 11)))  # rounded corners
    in_tail = 3 <= x <= 6 and 12 <= y <= 14 and x - 3 <= 14 - y
    if not (in_body or in_tail):
        return None
    if y in (6, 7) and x in (4, 5, 7, 8, 10, 11):  # three dots: "..." typing
        return DOTS
    return BUBBLE


@functools.cache
def favicon_ico() -> bytes:
    """The icon file: ICONDIR, one ICONDIRENTRY, a BITMAPINFOHEADER, the pixels bottom-up
    (BGRA), and the 1-bit AND mask (all zeros: the alpha channel decides)."""
    rows = []
    for y in reversed(range(SIZE)):  # BMP rows run bottom-up
        row = bytearray()
        for x in range(SIZE):
            colour = _pixel(x, y)
            row += bytes((0, 0, 0, 0)) if colour is None else bytes((colour[2], colour[1], colour[0], 255))
        rows.append(bytes(row))
    pixels = b"".join(rows)
    mask = bytes(4 * SIZE)  # 16 bits a row, padded to 32
    header = struct.pack("<IiiHHIIiiII", 40, SIZE, 2 * SIZE, 1, 32, 0, len(pixels) + len(mask), 0, 0, 0, 0)
    image = header + pixels + mask
    directory = struct.pack("<HHH", 0, 1, 1)  # reserved, type 1 (icon), one image
    entry = struct.pack("<BBBBHHII", SIZE, SIZE, 0, 0, 1, 32, len(image), 6 + 16)
    return directory + entry + image
