"""PacGAN packing: shapes, which samples share a pack, errors."""

import pytest
import torch

from gan_je.models import DCGANDiscriminator, MLPDiscriminator
from gan_je.models.packing import pack_samples, packed_shape


def test_packed_shape_multiplies_the_first_sample_axis():
    assert packed_shape((2,), 3) == (6,)
    assert packed_shape([1, 8, 8], 2) == (2, 8, 8)
    assert packed_shape((5,), 1) == (5,)


def test_flat_samples_are_joined_in_consecutive_groups():
    samples = torch.arange(12.0).reshape(6, 2)  # sample i is (2i, 2i + 1)
    packed = pack_samples(samples, 3)
    assert packed.shape == (2, 6)
    assert packed.tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]


def test_images_are_joined_along_channels():
    images = torch.randn(4, 3, 5, 5)
    packed = pack_samples(images, 2)
    assert packed.shape == (2, 6, 5, 5)
    assert torch.equal(packed[1, :3], images[2]) and torch.equal(packed[1, 3:], images[3])


def test_pack_of_one_is_the_identity_and_a_packed_discriminator_accepts_packs():
    samples = torch.randn(8, 2)
    assert pack_samples(samples, 1) is samples
    discriminator = MLPDiscriminator(packed_shape((2,), 4), hidden=8, n_layers=1)
    assert discriminator(pack_samples(samples, 4)).shape == (2,)


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"multiple of module\.pack"):
        pack_samples(torch.randn(5, 2), 2)
    with pytest.raises(ValueError, match="pack must be a positive integer"):
        pack_samples(torch.randn(4, 2), 0)
    with pytest.raises(ValueError, match="at least one sample axis"):
        pack_samples(torch.randn(4), 2)
    with pytest.raises(ValueError, match="pack must be a positive integer"):
        packed_shape((2,), 1.5)


@pytest.mark.parametrize(("sample_shape", "pack"), [((1, 28, 28), 4), ((3, 32, 32), 2)])
def test_a_dcgan_discriminator_judges_packs_of_images(sample_shape, pack):
    torch.manual_seed(0)
    n_packs = 3
    # layer norm keeps packs independent (batch norm would mix them), as WGAN-GP needs
    discriminator = DCGANDiscriminator(packed_shape(sample_shape, pack), width=4, norm="layer")
    images = torch.randn(n_packs * pack, *sample_shape, requires_grad=True)
    logits = discriminator(pack_samples(images, pack))
    assert logits.shape == (n_packs,) and torch.isfinite(logits).all()

    # the second logit sees every image of the second pack and no image of another pack
    (grad,) = torch.autograd.grad(logits[1], images, retain_graph=True)
    per_image = grad.flatten(1).abs().sum(dim=1)
    second_pack = torch.arange(n_packs * pack) // pack == 1
    assert (per_image[second_pack] > 0).all()
    assert (per_image[~second_pack] == 0).all()

    torch.nn.functional.softplus(-logits).mean().backward()
    for name, parameter in discriminator.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
