"""Sample pictures: the image grid equals torchvision's make_grid, pixel for pixel."""

import pytest
import torch
from torchvision.utils import make_grid

from gan_je.pictures import image_grid


@pytest.mark.parametrize(("n", "channels", "nrow"), [(10, 3, 3), (5, 1, 2), (50, 1, None)])
def test_the_grid_equals_torchvisions(n, channels, nrow):
    images = torch.rand(n, channels, 6, 5, generator=torch.Generator().manual_seed(n)) * 2.2 - 1.1
    expected = make_grid(  # nrow=None: a square, 7 of 50 (torchvision's default would be 8)
        images, nrow=nrow or 7, padding=1, normalize=True, value_range=(-1, 1)
    )  # values outside [-1, 1] are clipped by both
    expected = expected.mul(255).add(0.5).clamp(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    grid = image_grid(images, nrow)
    assert grid.tolist() == (expected[..., 0] if channels == 1 else expected).tolist()


def test_the_grid_refuses_what_is_not_a_batch_of_images():
    for bad in (torch.zeros(4, 2, 8, 8), torch.zeros(8, 8), torch.zeros(0, 1, 8, 8)):
        with pytest.raises(ValueError, match="image grid needs images"):
            image_grid(bad)
