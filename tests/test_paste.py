"""The shared paste: a bool mask copies exactly, a float mask blends; nothing else changes."""
import numpy as np

from pipeline.paste import compose, paste


def test_a_bool_mask_copies_exactly_and_leaves_the_base_alone():
    base = np.full((4, 4, 3), 10, np.uint8)
    new = np.full((4, 4, 3), 210, np.uint8)
    m = np.zeros((4, 4), bool)
    m[1, 1] = True
    out = compose(base, new, m)
    assert out[1, 1, 0] == 210 and (out[~m] == 10).all() and base[1, 1, 0] == 10


def test_a_float_mask_is_an_alpha():
    base = np.full((4, 4, 3), 10, np.uint8)
    new = np.full((4, 4, 3), 210, np.uint8)
    a = np.zeros((4, 4), np.float32)
    a[0], a[1], a[2] = 1.0, 0.5, 2.0  # out-of-range alphas are clipped
    out = compose(base, new, a)
    assert (out[0] == 210).all() and (out[1] == 110).all() and (out[2] == 210).all() and (out[3] == 10).all()


def test_paste_writes_only_its_region():
    img = np.zeros((10, 10, 3), np.uint8)
    paste(img, (2, 3, 5, 7), np.full((4, 3, 3), 9, np.uint8))
    assert (img[3:7, 2:5] == 9).all() and img.sum() == 9 * 4 * 3 * 3
    paste(img, (0, 0, 10, 10), None)  # nothing rendered: nothing written
    assert img.sum() == 9 * 4 * 3 * 3
