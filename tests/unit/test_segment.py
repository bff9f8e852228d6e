"""Splitting a number into digits: separate, broken and touching strokes."""

import numpy as np

from digitlab.images.segment import segment, split, split_counts


def blobs(*spans, height=40, width=200):
    mask = np.zeros((height, width), bool)
    for top, left, bottom, right in spans:
        mask[top:bottom, left:right] = True
    return mask


def test_separate_digits_come_out_left_to_right():
    found = segment(blobs((5, 120, 35, 140), (5, 10, 35, 30), (5, 60, 35, 80)))
    assert [s.box[1] for s in found] == [10, 60, 120]


def test_stacked_pieces_of_one_digit_are_merged():
    found = segment(blobs((5, 10, 12, 35), (15, 12, 35, 32)))  # a "5" whose top bar lifted off
    assert len(found) == 1 and found[0].box == (5, 10, 35, 35)


def test_a_wide_piece_may_hold_touching_digits_and_is_cut_at_the_thinnest_column():
    mask = blobs((5, 10, 35, 30), (5, 34, 35, 54))
    mask[18:20, 30:34] = True  # a thin bridge: two digits touching
    (piece,) = segment(mask)
    assert list(split_counts(piece, 30)) == [1, 2, 3]
    left, right = split(piece, 2)
    assert left.box[3] <= 34 and right.box[1] >= 30
    assert left.mask.sum() + right.mask.sum() == piece.mask.sum()
    narrow = segment(blobs((5, 10, 35, 22)))[0]
    assert list(split_counts(narrow, 30)) == [1]
