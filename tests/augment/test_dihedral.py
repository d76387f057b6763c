"""random_dihedral: each image gets one of the 8 exact symmetries of the square."""

import torch

from skastro.augment import random_dihedral


def _symmetries(image):
    views = []
    for k in range(4):
        rotated = torch.rot90(image, k, (-2, -1))
        views += [rotated, rotated.flip(-1)]
    return views


def test_every_output_is_a_symmetry_of_its_own_input_and_all_eight_occur():
    torch.manual_seed(0)
    X = torch.rand(400, 2, 5, 5)
    out = random_dihedral(X)
    seen = set()
    for image, view in zip(X, out):
        matches = [i for i, s in enumerate(_symmetries(image)) if torch.equal(s, view)]
        assert len(matches) == 1  # a random image has no symmetry of its own
        seen.add(matches[0])
    assert seen == set(range(8))


def test_non_square_images_are_only_flipped():
    torch.manual_seed(0)
    X = torch.rand(64, 1, 3, 5)
    out = random_dihedral(X)
    assert out.shape == X.shape
    for image, view in zip(X, out):
        flips = [image, image.flip(-1), image.flip(-2), image.flip(-1).flip(-2)]
        assert any(torch.equal(f, view) for f in flips)
