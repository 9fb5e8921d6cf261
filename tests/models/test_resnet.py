"""SNGAN's residual networks (gan_je.models.resnet): shapes, ranges and resolutions at every
claimed size, PacGAN packs, spectral norm, per-sample logits, the networks' contract,
refusals, and GANModule training them from model=resnet and reloading their checkpoint."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from gan_je.commands import build_from_config
from gan_je.models import ResNetDiscriminator, ResNetGenerator, contract
from gan_je.module import GANModule
from tests.models.test_models import CHANNELS, SIZES
from tests.test_module import _fit


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("size", SIZES)
def test_shapes_range_and_the_contract_at_every_size(size, channels):
    shape = (channels, size, size)
    G = ResNetGenerator(shape, latent_dim=16, width=8)
    D = ResNetDiscriminator(shape, width=8)
    assert G.sample_shape == shape and G.latent_dim == 16 and D.sample_shape == shape
    x = G(3 * torch.randn(5, 16))
    assert x.shape == (5, *shape) and x.abs().max() <= 1.0
    logits = D(x)
    assert logits.shape == (5,) and torch.isfinite(logits).all()
    contract.check_generator(G, shape)
    contract.check_discriminator(D, shape)


def test_the_bounded_generator_is_tanh_of_the_unbounded_one():
    bounded = ResNetGenerator((3, 16, 16), latent_dim=8, width=8)
    unbounded = ResNetGenerator((3, 16, 16), latent_dim=8, width=8, bounded=False)
    unbounded.load_state_dict(bounded.state_dict())
    z = 5 * torch.randn(16, 8)
    raw = unbounded(z)
    assert raw.abs().max() > 1.0  # so that tanh has something to bound
    torch.testing.assert_close(bounded(z), torch.tanh(raw))


def _resolutions(network: nn.Module, blocks: nn.Sequential, x: torch.Tensor) -> list[int]:
    """The side of each block's output when ``network`` maps ``x``."""
    sides = []
    hooks = [b.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])) for b in blocks]
    network(x)
    for hook in hooks:
        hook.remove()
    return sides


@pytest.mark.parametrize(
    ("size", "generator", "discriminator"),
    [
        (8, [8], [8, 8, 8]),  # base 4; 8 x 8 images are not halved
        (16, [8, 16], [8, 8, 8]),
        (28, [14, 28], [14, 14, 14]),  # base 7
        (32, [8, 16, 32], [16, 8, 8, 8]),  # Miyato et al.'s CIFAR-10: down, down, plain, plain
        (64, [8, 16, 32, 64], [32, 16, 8, 8, 8]),
    ],
)
def test_the_resolutions_double_from_the_base_and_halve_to_twice_it(size, generator, discriminator):
    G = ResNetGenerator((1, size, size), latent_dim=4, width=4)
    D = ResNetDiscriminator((1, size, size), width=4)
    assert G.input.out_features == 4 * G.base**2 and G.base == (7 if size == 28 else 4)
    assert _resolutions(G, G.blocks, torch.randn(2, 4)) == generator
    assert _resolutions(D, D.blocks, torch.randn(2, 1, size, size)) == discriminator


def test_the_paper_sizes_have_the_parameters_of_miyato_et_al_table_4():
    """Counted from the table: G 128 -> 4 x 4 x 256, three up-blocks of 256 (two batch norms,
    two 3x3 convolutions, a 1x1 shortcut), batch norm, a 3x3 convolution to RGB; D an optimized
    block and a down-block (3x3, 3x3, 1x1 shortcut), two plain blocks (3x3, 3x3), a linear."""
    G = ResNetGenerator((3, 32, 32))
    D = ResNetDiscriminator((3, 32, 32))

    def conv(n_in, n_out, k):
        return n_in * n_out * k * k + n_out

    block_g = 2 * 2 * 256 + 2 * conv(256, 256, 3) + conv(256, 256, 1)
    expected_g = (128 + 1) * 256 * 16 + 3 * block_g + 2 * 256 + conv(256, 3, 3)
    first = conv(3, 128, 3) + conv(128, 128, 3) + conv(3, 128, 1)
    down = 2 * conv(128, 128, 3) + conv(128, 128, 1)
    expected_d = first + down + 2 * 2 * conv(128, 128, 3) + 128 + 1
    assert sum(p.numel() for p in G.parameters()) == expected_g  # 4.28 million
    assert sum(p.numel() for p in D.parameters()) == expected_d  # 1.05 million


@pytest.mark.parametrize("channels", [2, 4, 6, 12])
def test_only_the_discriminator_takes_packs_of_other_channel_counts(channels):
    shape = (channels, 28, 28)
    with pytest.raises(ValueError, match=r"with C in \(1, 3\) and H = W"):
        ResNetGenerator(shape)
    D = ResNetDiscriminator(shape, width=4)
    assert D.blocks[0].conv1.in_channels == channels
    assert D(torch.randn(3, *shape)).shape == (3,)
    contract.check_discriminator(D, shape)


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_spectral_norm_on_every_layer_of_the_discriminator_or_none(spectral_norm):
    D = ResNetDiscriminator((3, 32, 32), width=8, spectral_norm=spectral_norm)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 2 * 4 + 2 + 1  # two 3x3 per block, two 1x1 shortcuts, the linear
    assert [hasattr(m, "parametrizations") for m in layers] == [spectral_norm] * len(layers)
    if spectral_norm:
        for _ in range(30):  # power iteration converges in train mode
            D(torch.randn(2, 3, 32, 32))
        for m in layers:
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert sigma == pytest.approx(1.0, abs=0.05)


def test_the_discriminator_has_no_batch_norm_and_judges_each_sample_alone():
    """What R1 and WGAN-GP need: logit i depends on sample i only, in training mode."""
    D = ResNetDiscriminator((1, 28, 28), width=8)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    x = torch.randn(4, 1, 28, 28, requires_grad=True)
    (grad,) = torch.autograd.grad(D(x)[0], x)
    assert grad[0].abs().sum() > 0 and (grad[1:] == 0).all()


def test_the_features_are_the_layer_the_logit_is_read_from():
    D = ResNetDiscriminator((3, 16, 16), width=12).eval()
    x = torch.randn(5, 3, 16, 16)
    hidden = D.features(x)
    assert hidden.shape == (5, 12) and (hidden >= 0).all()  # summed ReLU activations
    torch.testing.assert_close(D.output(hidden).squeeze(1), D(x))


def test_gradients_reach_every_parameter():
    G = ResNetGenerator((3, 16, 16), latent_dim=4, width=4)
    D = ResNetDiscriminator((3, 16, 16), width=4)
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    fake_logits = D(G(torch.randn(8, 4)))
    loss = nn.functional.softplus(-fake_logits).mean() + nn.functional.softplus(-D(real)).mean()
    loss.backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls", [ResNetGenerator, ResNetDiscriminator])
@pytest.mark.parametrize("shape", [(2,), (784,), (1, 24, 24), (1, 28, 32), (32, 32, 3)])
def test_unsupported_shapes_are_refused_in_one_sentence(cls, shape):
    with pytest.raises(ValueError) as info:
        cls(shape)
    message = str(info.value)
    assert message.startswith("ResNet needs square images of shape (C, H, W) with C ")
    assert "H = W in (8, 16, 28, 32, 64)" in message
    assert f"got samples of shape {shape}; use model=mlp" in message


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "64", None])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        ResNetGenerator((1, 8, 8), latent_dim=bad)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        ResNetGenerator((1, 8, 8), width=bad)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        ResNetDiscriminator((1, 8, 8), width=bad)


def test_wrong_input_shapes_raise_clear_errors():
    G = ResNetGenerator((1, 8, 8), latent_dim=10, width=4)
    with pytest.raises(ValueError, match=r"z of shape \(batch, 10\), got \(3, 11\)"):
        G(torch.randn(3, 11))
    D = ResNetDiscriminator((1, 8, 8), width=4)
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 8, 8\), got \(3, 1, 16, 16\)"):
        D(torch.randn(3, 1, 16, 16))


def test_model_resnet_trains_with_r1_and_its_checkpoint_reloads(train_config, tmp_path):
    """model=resnet on scikit-learn's 8 x 8 digits (hinge loss with the R1 penalty, which
    needs the discriminator's per-sample gradients), three generator steps, then
    ``GANModule.load_from_checkpoint`` gives the same networks and samples."""
    cfg = train_config(
        "model=resnet",
        "data=digits",
        "data.batch_size=16",
        "loss=hinge",
        "loss.r1_weight=1",
        "model.generator.width=8",
        "model.discriminator.width=8",
        "model.n_preview=4",
    )
    torch.manual_seed(cfg.seed)
    module = build_from_config(cfg.model, "model")
    datamodule = instantiate(cfg.data)
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=3, limit_val_batches=0)
    assert module.g_step == 3
    assert type(module.generator) is ResNetGenerator
    assert type(module.discriminator) is ResNetDiscriminator
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    loaded = GANModule.load_from_checkpoint(path)
    assert type(loaded.generator) is ResNetGenerator
    assert type(loaded.discriminator) is ResNetDiscriminator
    torch.testing.assert_close(loaded.sample(5, seed=1), module.sample(5, seed=1))
    assert loaded.sample(5, seed=1).shape == (5, 1, 8, 8)
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(loaded.discriminator.eval()(x), module.discriminator.eval()(x))
