"""Colours: HLS sampling in OpenCV's 8-bit convention, and names for RGB colours.

OpenCV's 8-bit HLS stores hue in degrees / 2 (0–180), lightness and saturation in 0–255;
`hls_to_rgb` follows OpenCV's HLS→RGB formula and rounds to the nearest integer.

The named-colour table holds the CSS/X11 colour keywords with spellings that name the same RGB
removed (cyan kept over aqua, magenta over fuchsia, "gray" over "grey"), 139 names written as
words ("light sea green"), so captions read naturally.
"""

from __future__ import annotations

import numpy as np

_TABLE = """
    alice blue:f0f8ff, antique white:faebd7, aquamarine:7fffd4, azure:f0ffff, beige:f5f5dc,
    bisque:ffe4c4, black:000000, blanched almond:ffebcd, blue:0000ff, blue violet:8a2be2,
    brown:a52a2a, burly wood:deb887, cadet blue:5f9ea0, chartreuse:7fff00, chocolate:d2691e,
    coral:ff7f50, cornflower blue:6495ed, cornsilk:fff8dc, crimson:dc143c, cyan:00ffff, dark
    blue:00008b, dark cyan:008b8b, dark goldenrod:b8860b, dark gray:a9a9a9, dark green:006400, dark
    khaki:bdb76b, dark magenta:8b008b, dark olive green:556b2f, dark orange:ff8c00, dark
    orchid:9932cc, dark red:8b0000, dark salmon:e9967a, dark sea green:8fbc8f, dark slate
    blue:483d8b, dark slate gray:2f4f4f, dark turquoise:00ced1, dark violet:9400d3, deep
    pink:ff1493, deep sky blue:00bfff, dim gray:696969, dodger blue:1e90ff, fire brick:b22222,
    floral white:fffaf0, forest green:228b22, gainsboro:dcdcdc, ghost white:f8f8ff, gold:ffd700,
    goldenrod:daa520, gray:808080, green:008000, green yellow:adff2f, honeydew:f0fff0, hot
    pink:ff69b4, indian red:cd5c5c, indigo:4b0082, ivory:fffff0, khaki:f0e68c, lavender:e6e6fa,
    lavender blush:fff0f5, lawn green:7cfc00, lemon chiffon:fffacd, light blue:add8e6, light
    coral:f08080, light cyan:e0ffff, light goldenrod yellow:fafad2, light gray:d3d3d3, light
    green:90ee90, light pink:ffb6c1, light salmon:ffa07a, light sea green:20b2aa, light sky
    blue:87cefa, light slate gray:778899, light steel blue:b0c4de, light yellow:ffffe0,
    lime:00ff00, lime green:32cd32, linen:faf0e6, magenta:ff00ff, maroon:800000, medium
    aquamarine:66cdaa, medium blue:0000cd, medium orchid:ba55d3, medium purple:9370db, medium sea
    green:3cb371, medium slate blue:7b68ee, medium spring green:00fa9a, medium turquoise:48d1cc,
    medium violet red:c71585, midnight blue:191970, mint cream:f5fffa, misty rose:ffe4e1,
    moccasin:ffe4b5, navajo white:ffdead, navy:000080, old lace:fdf5e6, olive:808000, olive
    drab:6b8e23, orange:ffa500, orange red:ff4500, orchid:da70d6, pale goldenrod:eee8aa, pale
    green:98fb98, pale turquoise:afeeee, pale violet red:db7093, papaya whip:ffefd5, peach
    puff:ffdab9, peru:cd853f, pink:ffc0cb, plum:dda0dd, powder blue:b0e0e6, purple:800080, rebecca
    purple:663399, red:ff0000, rosy brown:bc8f8f, royal blue:4169e1, saddle brown:8b4513,
    salmon:fa8072, sandy brown:f4a460, sea green:2e8b57, seashell:fff5ee, sienna:a0522d,
    silver:c0c0c0, sky blue:87ceeb, slate blue:6a5acd, slate gray:708090, snow:fffafa, spring
    green:00ff7f, steel blue:4682b4, tan:d2b48c, teal:008080, thistle:d8bfd8, tomato:ff6347,
    turquoise:40e0d0, violet:ee82ee, wheat:f5deb3, white:ffffff, white smoke:f5f5f5, yellow:ffff00,
    yellow green:9acd32
"""

COLOR_NAMES: tuple[str, ...] = tuple(" ".join(item.split(":")[0].split()) for item in _TABLE.split(","))
COLOR_RGB: np.ndarray = np.array(
    [[int(item.split(":")[1].strip()[i : i + 2], 16) for i in (0, 2, 4)] for item in _TABLE.split(",")],
    dtype=np.int64,
)
COLOR_INDEX: dict[str, int] = {name: i for i, name in enumerate(COLOR_NAMES)}


def hls_to_rgb(h: np.ndarray, lightness: np.ndarray, s: np.ndarray) -> np.ndarray:
    """OpenCV 8-bit HLS (H in [0, 180], L and S in [0, 255]) to RGB uint8 (N, 3)."""
    hue = (np.asarray(h, dtype=np.float64) * 2.0 / 60.0) % 6.0  # sextant position in [0, 6)
    light = np.asarray(lightness, dtype=np.float64) / 255.0
    sat = np.asarray(s, dtype=np.float64) / 255.0
    p2 = np.where(light <= 0.5, light * (1.0 + sat), light + sat - light * sat)
    p1 = 2.0 * light - p2
    sector = np.floor(hue).astype(np.int64)
    frac = hue - sector
    # the four values a channel can take, indexed like OpenCV's tab[]
    tab = np.stack([p2, p1, p1 + (p2 - p1) * (1.0 - frac), p1 + (p2 - p1) * frac], axis=-1)
    # per sector, which tab entry is (b, g, r)
    pick = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])
    bgr = np.take_along_axis(tab, pick[sector], axis=-1)
    rgb = bgr[..., ::-1]
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def sample_hls_rgb(rng: np.random.Generator, n: int) -> np.ndarray:
    """RGB uint8 (n, 3) drawn uniformly in 8-bit HLS: H in 0..179, L in 46..255, S in 0..255.

    Hue 180 would be hue 0 again (360°), so hue is drawn from 0..179 to keep it uniform on the
    circle. Lightness at least 46 keeps every shape visible on the black background.
    """
    h = rng.integers(0, 180, size=n)
    lightness = rng.integers(46, 256, size=n)
    s = rng.integers(0, 256, size=n)
    return hls_to_rgb(h, lightness, s)


def nearest_color(rgb: np.ndarray) -> np.ndarray:
    """Index into COLOR_NAMES of the nearest named colour (Euclidean RGB) for each row of (N, 3).

    |x − c|² = |x|² − 2 x·c + |c|²; the first term is the same for every c. With integer
    colours every term is an integer far below 2**53, so the float64 sums are exact and ties go
    to the first name, as a direct computation would.
    """
    rgb = np.rint(np.asarray(rgb, dtype=np.float64)).reshape(-1, 3)
    table = COLOR_RGB.astype(np.float64)
    return np.argmin((table**2).sum(axis=1) - 2.0 * rgb @ table.T, axis=1)
