"""Generators and discriminators: shapes, ranges, variants, argument errors, init, gradients."""

import pytest
import torch
from torch import nn

from gan_je.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator

SIZES = (8, 16, 28, 32, 64)
CHANNELS = (1, 3)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ------------------------------------------------------------------------------------ DCGAN


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("size", SIZES)
def test_dcgan_shapes_and_range(size, channels):
    shape = (channels, size, size)
    G = DCGANGenerator(shape, latent_dim=16, width=8)
    D = DCGANDiscriminator(shape, width=8)
    assert G.sample_shape == shape and G.latent_dim == 16 and D.sample_shape == shape
    x = G(torch.randn(5, 16))
    assert x.shape == (5, *shape)
    assert x.abs().max() <= 1.0
    assert D(x).shape == (5,)


def test_dcgan_channel_widths_shrink_as_resolution_grows():
    G = DCGANGenerator((3, 64, 64), width=64)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [512, 256, 128, 64, 3]
    D = DCGANDiscriminator((3, 64, 64), width=64)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512, 1]
    G28 = DCGANGenerator((1, 28, 28), width=64)
    convs = [m for m in G28.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [128, 64, 1]
    assert convs[0].kernel_size == (7, 7)  # z -> 7 x 7 -> 14 -> 28


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_dcgan_discriminator_variants(norm, spectral_norm):
    D = DCGANDiscriminator((3, 32, 32), width=8, norm=norm, spectral_norm=spectral_norm)
    out = D(torch.randn(4, 3, 32, 32))
    assert out.shape == (4,) and torch.isfinite(out).all()
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    has_ln = any(isinstance(m, nn.GroupNorm) for m in D.modules())
    assert has_bn == (norm == "batch") and has_ln == (norm == "layer")
    n_sn = sum(hasattr(m, "parametrizations") for m in D.modules() if isinstance(m, nn.Conv2d))
    n_conv = sum(isinstance(m, nn.Conv2d) for m in D.modules())
    assert n_sn == (n_conv if spectral_norm else 0)


def test_dcgan_first_discriminator_layer_has_no_norm():
    D = DCGANDiscriminator((1, 28, 28), width=8, norm="batch")
    assert isinstance(D.net[0], nn.Conv2d) and isinstance(D.net[1], nn.LeakyReLU)


def test_spectral_norm_bounds_each_conv():
    D = DCGANDiscriminator((1, 16, 16), width=8, spectral_norm=True, norm="none")
    for _ in range(20):  # power iteration converges in train mode
        D(torch.randn(2, 1, 16, 16))
    for m in D.modules():
        if isinstance(m, nn.Conv2d):
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert sigma == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(
    ("cls", "channel_rule"),
    [(DCGANGenerator, "C in (1, 3)"), (DCGANDiscriminator, "C >= 1")],
)
@pytest.mark.parametrize(
    "shape", [(2,), (784,), (1, 24, 24), (1, 28, 32), (0, 32, 32), (32, 32, 3), (1, 32, 32, 1)]
)
def test_dcgan_rejects_unsupported_shapes_with_one_clear_sentence(cls, channel_rule, shape):
    with pytest.raises(ValueError) as info:
        cls(shape)
    message = str(info.value)
    assert message.startswith(
        f"DCGAN needs square images of shape (C, H, W) with {channel_rule} and H = W in "
    )
    assert f"got samples of shape {shape}" in message
    assert "use model=mlp" in message


@pytest.mark.parametrize("channels", [2, 4, 6, 12])
def test_only_the_discriminator_takes_channel_counts_other_than_1_and_3(channels):
    """A generator draws grey or RGB images; a discriminator may judge PacGAN packs."""
    shape = (channels, 16, 16)
    with pytest.raises(ValueError, match=r"with C in \(1, 3\) and H = W"):
        DCGANGenerator(shape)
    D = DCGANDiscriminator(shape, width=4)
    assert D.sample_shape == shape and D.net[0].in_channels == channels
    assert D(torch.randn(3, *shape)).shape == (3,)


def test_dcgan_message_for_flat_data_reads_as_documented():
    with pytest.raises(ValueError) as info:
        DCGANGenerator([2])
    assert str(info.value) == (
        "DCGAN needs square images of shape (C, H, W) with C in (1, 3) and H = W in "
        "(8, 16, 28, 32, 64), got samples of shape (2,); use model=mlp for flat data or other sizes"
    )


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "64", None])
def test_dcgan_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        DCGANGenerator((1, 8, 8), latent_dim=bad)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        DCGANGenerator((1, 8, 8), width=bad)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        DCGANDiscriminator((1, 8, 8), width=bad)


def test_dcgan_rejects_unknown_norm():
    with pytest.raises(ValueError, match=r"norm must be one of \('batch', 'layer', 'none'\)"):
        DCGANDiscriminator((1, 8, 8), norm="instance")


def test_wrong_input_shapes_raise_clear_errors():
    G = DCGANGenerator((1, 8, 8), latent_dim=10, width=4)
    with pytest.raises(ValueError, match=r"z of shape \(batch, 10\), got \(3, 11\)"):
        G(torch.randn(3, 11))
    D = DCGANDiscriminator((1, 8, 8), width=4)
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 8, 8\), got \(3, 1, 16, 16\)"):
        D(torch.randn(3, 1, 16, 16))


def test_accepts_hydra_list_config_shapes():
    omegaconf = pytest.importorskip("omegaconf")
    shape = omegaconf.OmegaConf.create({"s": [1, 28, 28]}).s
    assert DCGANGenerator(shape, width=4).sample_shape == (1, 28, 28)
    assert MLPDiscriminator(shape).sample_shape == (1, 28, 28)


def test_accepts_numpy_integers():
    np = pytest.importorskip("numpy")
    G = DCGANGenerator(np.array([3, 16, 16]), latent_dim=np.int64(8), width=np.int32(4))
    assert G.sample_shape == (3, 16, 16) and type(G.sample_shape[0]) is int
    assert G.latent_dim == 8 and type(G.latent_dim) is int
    assert G(torch.randn(2, 8)).shape == (2, 3, 16, 16)


def test_dcgan_init_follows_radford():
    G = DCGANGenerator((3, 64, 64), width=64)
    D = DCGANDiscriminator((3, 64, 64), width=64, norm="batch")
    for model in (G, D):
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                w = m.weight.detach()
                if w.numel() >= 1000:
                    assert w.mean().abs() < 0.002
                    assert w.std().item() == pytest.approx(0.02, rel=0.05)
                if m.bias is not None:
                    assert (m.bias == 0).all()
            if isinstance(m, nn.BatchNorm2d):
                assert m.weight.mean().item() == pytest.approx(1.0, abs=0.01)
                assert m.weight.std().item() == pytest.approx(0.02, rel=0.3)
                assert (m.bias == 0).all()


def test_dcgan_init_with_layer_norm_and_spectral_norm():
    D = DCGANDiscriminator((3, 32, 32), width=64, norm="layer", spectral_norm=True)
    originals = [p for n, p in D.named_parameters() if n.endswith("original")]
    assert len(originals) == 4
    big = torch.cat([p.detach().flatten() for p in originals])
    assert big.std().item() == pytest.approx(0.02, rel=0.05)
    for m in D.modules():
        if isinstance(m, nn.GroupNorm):
            assert m.weight.mean().item() == pytest.approx(1.0, abs=0.01)


# -------------------------------------------------------------------------------------- MLP


@pytest.mark.parametrize("shape", [(2,), (5,), (1, 8, 8), (3, 4, 4)])
def test_mlp_shapes(shape):
    G = MLPGenerator(shape, latent_dim=7, hidden=16, n_layers=2)
    D = MLPDiscriminator(shape, hidden=16, n_layers=2)
    assert G.sample_shape == shape and G.latent_dim == 7 and D.sample_shape == shape
    x = G(torch.randn(6, 7))
    assert x.shape == (6, *shape)
    assert D(x).shape == (6,)


def test_mlp_output_is_linear_unless_bounded():
    z = 50 * torch.randn(64, 4)
    assert MLPGenerator((2,), latent_dim=4)(z).abs().max() > 1.0
    assert MLPGenerator((2,), latent_dim=4, bounded=True)(z).abs().max() <= 1.0


def test_mlp_layer_count_and_spectral_norm():
    G = MLPGenerator((2,), hidden=16, n_layers=3)
    assert sum(isinstance(m, nn.Linear) for m in G.modules()) == 4
    D = MLPDiscriminator((2,), hidden=16, n_layers=3, spectral_norm=True)
    linears = [m for m in D.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4 and all(hasattr(m, "parametrizations") for m in linears)
    assert D(torch.randn(3, 2)).shape == (3,)


@pytest.mark.parametrize("arg", ["latent_dim", "hidden", "n_layers"])
@pytest.mark.parametrize("bad", [0, -2, 2.0, False])
def test_mlp_rejects_bad_sizes(arg, bad):
    with pytest.raises(ValueError, match=f"{arg} must be a positive integer"):
        MLPGenerator((2,), **{arg: bad})
    if arg != "latent_dim":
        with pytest.raises(ValueError, match=f"{arg} must be a positive integer"):
            MLPDiscriminator((2,), **{arg: bad})


@pytest.mark.parametrize("shape", [(), (0,), (2, -1), (2.5,), 3])
def test_mlp_rejects_bad_sample_shapes(shape):
    with pytest.raises(ValueError, match="sample_shape must be a"):
        MLPGenerator(shape)
    with pytest.raises(ValueError, match="sample_shape must be a"):
        MLPDiscriminator(shape)


# ------------------------------------------------------------------------- gradients, fitting


def _pairs():
    yield MLPGenerator((3,), latent_dim=4, hidden=8), MLPDiscriminator((3,), hidden=8)
    yield (
        MLPGenerator((1, 8, 8), latent_dim=4, hidden=8, bounded=True),
        MLPDiscriminator((1, 8, 8), hidden=8, spectral_norm=True),
    )
    for norm in ("batch", "layer", "none"):
        yield (
            DCGANGenerator((3, 16, 16), latent_dim=4, width=4),
            DCGANDiscriminator((3, 16, 16), width=4, norm=norm, spectral_norm=norm == "none"),
        )


@pytest.mark.parametrize("pair", list(_pairs()), ids=lambda p: type(p[1]).__name__)
def test_gradients_reach_every_parameter(pair):
    G, D = pair
    latent_dim = G.latent_dim
    real = torch.rand(8, *G.sample_shape) * 2 - 1
    # Non-saturating GAN losses of both players; a difference of means would cancel D's last bias.
    fake_logits = D(G(torch.randn(8, latent_dim)))
    loss = nn.functional.softplus(-fake_logits).mean() + nn.functional.softplus(-D(real)).mean()
    loss.backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_dcgan_discriminator_and_generator_can_fit_a_tiny_task():
    shape = (1, 8, 8)
    D = DCGANDiscriminator(shape, width=8)
    real = torch.full((16, *shape), 0.5) + 0.1 * torch.randn(16, *shape)
    fake = torch.full((16, *shape), -0.5) + 0.1 * torch.randn(16, *shape)
    opt = torch.optim.Adam(D.parameters(), lr=1e-2)
    bce = nn.functional.binary_cross_entropy_with_logits
    losses = []
    for _ in range(30):
        loss = bce(D(real), torch.ones(16)) + bce(D(fake), torch.zeros(16))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]

    G = DCGANGenerator(shape, latent_dim=8, width=8)
    z = torch.randn(16, 8)
    target = torch.linspace(-0.8, 0.8, 64).view(1, *shape).expand(16, *shape)
    opt = torch.optim.Adam(G.parameters(), lr=5e-3)
    losses = []
    for _ in range(60):
        loss = (G(z) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


@pytest.mark.parametrize(
    ("shape", "channels", "base"),
    [((3, 28, 28), 16, 7), ((1, 32, 32), 32, 4)],  # width 8, doubled per halving but the first
)
def test_dcgan_discriminator_features_are_the_layer_its_logit_is_read_from(shape, channels, base):
    disc = DCGANDiscriminator(shape, width=8).eval()
    x = torch.randn(5, *shape)
    hidden = disc.features(x)
    assert hidden.shape == (5, channels * base * base)
    logits = disc.net[-1](hidden.view(5, channels, base, base)).flatten()
    torch.testing.assert_close(logits, disc(x))


def test_mlp_discriminator_features_are_the_layer_its_logit_is_read_from():
    disc = MLPDiscriminator((2,), hidden=12, n_layers=2)
    x = torch.randn(7, 2)
    hidden = disc.features(x)
    assert hidden.shape == (7, 12)
    torch.testing.assert_close(disc.net[-1](hidden).squeeze(1), disc(x))
    with pytest.raises(ValueError):
        disc.features(torch.randn(7, 3))
