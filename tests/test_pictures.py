"""Pictures: the image grid equals torchvision's make_grid, pixel for pixel; the run's curves
draw each estimate with its error band."""

import numpy as np
import pytest
import torch
from matplotlib.collections import PolyCollection
from torchvision.utils import make_grid

from gan_je.pictures import curves_figure, image_grid, plot_curves


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


def _bands(ax) -> list[np.ndarray]:
    """The vertices (x, y) of each shaded band (``fill_between``) of ``ax``."""
    return [
        np.concatenate([path.vertices for path in c.get_paths()])
        for c in ax.collections
        if isinstance(c, PolyCollection)
    ]


def test_the_curves_draw_each_estimate_with_its_95_percent_band():
    rows = [
        {"g_step": 5.0, "val/entropy_real": 2.0, "val/entropy_real_se": 0.1,
         "val/entropy_fake": 1.0, "val/entropy_fake_se": 0.3,
         "val/jsd": 0.4, "val/jsd_se": 0.05, "val/jsd_sliced": 0.3},
        {"g_step": 10.0, "val/entropy_real": 2.5, "val/entropy_real_se": 0.2,
         "val/entropy_fake": 1.5, "val/entropy_fake_se": 0.4,
         "val/jsd": 0.2, "val/jsd_se": 0.02, "val/jsd_sliced": 0.1},
    ]  # fmt: skip
    left, right = curves_figure(rows).axes
    expected = {  # per panel, the estimates with a band, in drawing order
        left: [("val/entropy_real", "real"), ("val/entropy_fake", "generated")],
        right: [("val/jsd", "JSD")],  # the sliced JSD has no standard error: no band
    }
    for ax, curves in expected.items():
        bands = _bands(ax)
        assert len(bands) == len(curves)
        lines = {line.get_label(): line for line in ax.get_lines()}
        for band, (key, label) in zip(bands, curves, strict=True):
            for row in rows:
                at = band[np.isclose(band[:, 0], row["g_step"]), 1]
                half = 1.96 * row[f"{key}_se"]
                assert at.min() == pytest.approx(row[key] - half, abs=1e-3)
                assert at.max() == pytest.approx(row[key] + half, abs=1e-3)
            assert lines[label].get_ydata().tolist() == [row[key] for row in rows]
    assert "1.96" in curves_figure(rows).get_suptitle()


def test_the_curves_without_standard_errors_have_no_band_and_refuse_no_rows(tmp_path):
    rows = [{"g_step": 1.0, "val/jsd": 0.4}, {"g_step": 2.0, "val/jsd": 0.3}]
    figure = curves_figure(rows)
    assert not any(_bands(ax) for ax in figure.axes) and not figure.get_suptitle()
    plot_curves(rows, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for bad in ([], [{"val/jsd": 0.4}]):
        with pytest.raises(ValueError, match="each with its g_step"):
            curves_figure(bad)
