"""The token-sequence networks: Gulrajani et al.'s residual generator and discriminator and the
autoregressive LSTM generator (exact log-likelihoods, inverse-CDF and Gumbel-max samples)."""

from __future__ import annotations

import itertools

import pytest
import torch

from gan_je import parts
from gan_je.models import CharResNetDiscriminator, CharResNetGenerator, LSTMGenerator, contract
from gan_je.models.lstm import LSTMLanguageModel

L, V = 4, 3


def _all_sequences(length: int, vocab: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(vocab), repeat=length)))


def _frequencies(one_hots: torch.Tensor, vocab: int) -> torch.Tensor:
    """How often each sequence occurs, indexed as in :func:`_all_sequences`."""
    ids = one_hots.argmax(dim=-1)
    powers = vocab ** torch.arange(ids.shape[1] - 1, -1, -1)
    index = (ids * powers).sum(dim=1)
    return torch.bincount(index, minlength=vocab ** ids.shape[1]).double() / ids.shape[0]


def _assert_frequencies_match(frequencies: torch.Tensor, p: torch.Tensor, n: int) -> None:
    """Every sequence's frequency within 5 standard errors (plus a rounding slack) of p."""
    tolerance = 5 * (p * (1 - p) / n).sqrt() + 2e-4
    assert ((frequencies - p).abs() <= tolerance).all(), (frequencies - p).abs().max()


def _is_one_hot(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all() and (x.sum(-1) == 1).all())


def test_the_residual_generator_emits_softmaxes_in_train_mode_and_one_hots_in_eval():
    generator = CharResNetGenerator((L, V), latent_dim=8, width=6, n_blocks=2)
    z = torch.randn(5, 8)
    soft = generator.train()(z)
    assert soft.shape == (5, L, V)
    assert (soft > 0).all() and not _is_one_hot(soft)
    torch.testing.assert_close(soft.sum(-1), torch.ones(5, L))
    hard = generator.eval()(z)
    assert _is_one_hot(hard) and hard.dtype == torch.float32
    assert torch.equal(hard.argmax(-1), soft.argmax(-1))  # the argmax of the same logits


def test_the_residual_discriminator_reads_sequences_and_packs_of_them():
    discriminator = CharResNetDiscriminator((2 * L, V), width=6, n_blocks=2)
    assert discriminator(torch.rand(5, 2 * L, V)).shape == (5,)
    assert discriminator.features(torch.rand(5, 2 * L, V)).shape == (5, 6 * 2 * L)
    with pytest.raises(ValueError, match=r"expects samples of shape \(batch, 8, 3\)"):
        discriminator(torch.rand(5, L, V))


def test_the_text_networks_fulfil_the_contract_and_are_registered_parts():
    for target, shape in (
        ("gan_je.models.CharResNetGenerator", (L, V)),
        ("gan_je.models.LSTMGenerator", (L, V)),
    ):
        network = parts.build({"_target_": target}, "g", sample_shape=shape, bounded=False)
        contract.check_generator(network, shape)
    network = parts.build(
        {"_target_": "gan_je.models.CharResNetDiscriminator"}, "d", sample_shape=(3 * L, V)
    )
    contract.check_discriminator(network, (3 * L, V))


@pytest.mark.parametrize("network", [CharResNetGenerator, LSTMGenerator])
def test_the_generators_refuse_other_shapes_and_bounded_data(network):
    with pytest.raises(ValueError, match="token sequences of shape"):
        network((1, 28, 28))
    with pytest.raises(ValueError, match="vocab_size >= 2"):
        network((L, 1))
    with pytest.raises(ValueError, match="not values in"):
        network((L, V), bounded=True)
    with pytest.raises(ValueError, match="expects z of shape"):
        network((L, V))(torch.randn(2, 3))


def test_lstm_log_prob_is_a_distribution_over_all_sequences_at_its_temperature():
    generator = LSTMGenerator((L, V), temperature=0.7)
    generator.model.init_normal_(torch.Generator().manual_seed(0))
    ids = _all_sequences(L, V)
    log_p = generator.log_prob(ids)
    assert log_p.shape == (V**L,)
    assert float(torch.logsumexp(log_p.detach().double(), 0)) == pytest.approx(0.0, abs=1e-5)
    torch.testing.assert_close(log_p, generator.model.log_prob(ids, 0.7))
    assert not torch.allclose(log_p, generator.model.log_prob(ids, 1.0))


def test_lstm_nll_is_the_mean_negative_log_likelihood_per_token_at_temperature_one():
    torch.manual_seed(1)
    generator = LSTMGenerator((L, V), temperature=0.5)
    ids = torch.randint(V, (7, L))
    expected = -generator.model.log_prob(ids, 1.0).sum() / (7 * L)
    torch.testing.assert_close(generator.nll(ids), expected)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32])
def test_lstm_log_prob_and_nll_read_ids_of_any_integer_type(dtype):
    generator = LSTMGenerator((L, V), temperature=0.5)
    ids = _all_sequences(L, V)
    torch.testing.assert_close(generator.log_prob(ids.to(dtype)), generator.log_prob(ids))
    torch.testing.assert_close(generator.nll(ids.to(dtype)), generator.nll(ids))


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_lstm_samples_follow_exp_log_prob(mode):
    """Eval mode: inverse-CDF samples from Phi(z); train mode, straight-through: the hard
    one-hots are Gumbel-max samples of p_tau. Both have the frequencies exp(log_prob)."""
    length, n = 3, 40_000
    generator = LSTMGenerator((length, V), temperature=1.3, straight_through=True)
    generator.model.init_normal_(torch.Generator().manual_seed(2))  # far from uniform
    p = generator.log_prob(_all_sequences(length, V)).double().exp().detach()
    generator.train(mode == "train")
    with torch.no_grad():
        samples = generator(torch.randn(n, length))
    assert _is_one_hot(samples)
    _assert_frequencies_match(_frequencies(samples, V), p, n)


def test_lstm_eval_samples_are_the_language_models_inverse_cdf_samples():
    generator = LSTMGenerator((L, V), temperature=0.8).eval()
    generator.model.init_normal_(torch.Generator().manual_seed(3))
    z = torch.randn(50, L) * 3
    z[0] = 40.0  # Phi(z) rounds to 1: clamped, the last token
    z[1] = -40.0
    ids = generator(z).argmax(-1)
    u = torch.distributions.Normal(0.0, 1.0).cdf(z).clamp(max=1 - 2**-24)
    assert torch.equal(ids, generator.model.sample_from_uniforms(u, 0.8))
    assert torch.equal(generator(z), generator(z.clone()))  # same latents, same samples
    assert not torch.equal(generator(torch.randn(50, L)), generator(z))


@pytest.mark.parametrize("straight_through", [False, True])
def test_gradients_flow_through_the_relaxed_lstm_samples_to_every_parameter(straight_through):
    torch.manual_seed(4)
    generator = LSTMGenerator((L, V), straight_through=straight_through).train()
    samples = generator(torch.zeros(16, L))
    assert _is_one_hot(samples) == straight_through
    torch.testing.assert_close(samples.sum(-1), torch.ones(16, L))
    (samples * torch.randn(L, V)).sum().backward()
    for name, parameter in generator.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_lstm_train_samples_draw_gumbel_noise_from_the_global_stream():
    generator = LSTMGenerator((L, V)).train()
    torch.manual_seed(5)
    first = generator(torch.zeros(8, L))
    torch.manual_seed(5)
    assert torch.equal(generator(torch.ones(8, L)), first)  # z plays no part in train mode
    assert not torch.equal(generator(torch.zeros(8, L)), first)


def test_gradients_flow_through_the_residual_generators_softmax():
    generator = CharResNetGenerator((L, V), latent_dim=8, width=6, n_blocks=2).train()
    (generator(torch.randn(4, 8)) * torch.randn(L, V)).sum().backward()
    for name, parameter in generator.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_the_lstm_generator_wraps_the_language_model():
    generator = LSTMGenerator((5, 7), embed_dim=4, hidden_dim=6)
    assert isinstance(generator.model, LSTMLanguageModel)
    assert (generator.model.length, generator.model.vocab_size) == (5, 7)
    assert generator.latent_dim == 5
    with pytest.raises(ValueError, match="temperature"):
        LSTMGenerator((5, 7), temperature=0)
    with pytest.raises(ValueError, match="straight_through"):
        LSTMGenerator((5, 7), straight_through="yes")
