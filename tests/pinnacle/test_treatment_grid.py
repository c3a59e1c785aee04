"""An ROI's mask counts the CT pixels whose centre lies inside its curves: what a DICOM reader of the RTSTRUCT counts,
not the pixels a contour merely touches."""

from __future__ import annotations

import numpy as np

from rtvault.pinnacle.treatment_grid import centres_inside


def square(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)


def test_a_square_holds_the_centres_inside_it_and_not_the_pixels_it_touches() -> None:
    inside = centres_inside(square(1.6, 2.4, 4.4, 5.6), 8, 8)
    rows, cols = np.nonzero(inside)
    assert set(rows) == {3, 4, 5} and set(cols) == {2, 3, 4}
    assert inside.sum() == 9  # a fill of every touched pixel would count 4 × 4 = 16


def test_two_curves_sharing_an_edge_never_both_own_a_pixel() -> None:
    left = centres_inside(square(0.0, 0.0, 3.0, 4.0), 8, 8)
    right = centres_inside(square(3.0, 0.0, 6.0, 4.0), 8, 8)
    assert not (left & right).any()
    assert (left | right).sum() == 6 * 4  # and none is lost between them


def test_an_inner_curve_is_a_hole_even_odd() -> None:
    whole = centres_inside(square(0.5, 0.5, 8.5, 8.5), 10, 10) ^ centres_inside(square(2.5, 2.5, 6.5, 6.5), 10, 10)
    assert whole.sum() == 64 - 16
    assert not whole[3:7, 3:7].any() and whole[1, 1]


def test_a_curve_partly_off_the_image_keeps_the_part_on_it() -> None:
    inside = centres_inside(np.array([(-5.0, -5.0), (2.5, -5.0), (2.5, 20.0), (-5.0, 20.0)]), 6, 4)
    assert inside[:, :3].all() and not inside[:, 3:].any()


def test_a_triangle_counts_its_area_in_pixels() -> None:
    inside = centres_inside(np.array([(0.3, 0.2), (180.7, 0.2), (0.3, 120.9)]), 200, 200)
    assert abs(int(inside.sum()) - 180.4 * 120.7 / 2) < 0.01 * 180.4 * 120.7 / 2
