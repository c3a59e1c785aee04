"""Pinnacle's colour names (an ROI's `color`, a point's) as RGB: what a viewer draws them in and what a DICOM
RTSTRUCT's ROIDisplayColor says. Pinnacle offers a fixed palette; a name outside it (a hand-edited file) is
drawn in `UNKNOWN`, never refused."""

from __future__ import annotations

RGB = tuple[int, int, int]
UNKNOWN: RGB = (255, 0, 255)
PALETTE: dict[str, RGB] = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "purple": (160, 32, 240), "skyblue": (135, 206, 235), "lavender": (230, 230, 250), "orange": (255, 165, 0),
    "forest": (34, 139, 34), "slateblue": (106, 90, 205), "lightblue": (173, 216, 230),
    "yellowgreen": (154, 205, 50), "lightorange": (255, 200, 100), "grey": (190, 190, 190), "gray": (190, 190, 190),
    "khaki": (240, 230, 140), "aquamarine": (127, 255, 212), "teal": (0, 128, 128), "steelblue": (70, 130, 180),
    "brown": (165, 42, 42), "olive": (128, 128, 0), "tomato": (255, 99, 71), "seashell": (255, 245, 238),
    "maroon": (176, 48, 96), "greyscale": (128, 128, 128), "white": (255, 255, 255), "black": (0, 0, 0),
    "lime": (50, 205, 50), "cyan": (0, 255, 255), "magenta": (255, 0, 255), "pink": (255, 192, 203),
    "violet": (238, 130, 238), "gold": (255, 215, 0), "navy": (0, 0, 128), "salmon": (250, 128, 114),
    "chartreuse": (127, 255, 0), "turquoise": (64, 224, 208), "beige": (245, 245, 220), "tan": (210, 180, 140),
    "darkorange": (255, 140, 0), "smarts": (255, 128, 0),
}


def known(name: str) -> RGB | None:
    """The colour a Pinnacle name stands for (case and spaces ignored); None for a name outside the palette."""
    return PALETTE.get(name.strip().lower().replace(" ", ""))


def rgb(name: str) -> RGB:
    """The colour a Pinnacle name stands for; `UNKNOWN` for a name outside the palette."""
    return known(name) or UNKNOWN


def hex_of(name: str) -> str:
    """`#rrggbb` of a Pinnacle colour name."""
    return "#{:02x}{:02x}{:02x}".format(*rgb(name))
