"""Generators and a discriminator for token sequences (the ``tokens`` kind: a sample is
``(L, V)``, at each of L positions a distribution over V tokens).

A generator returns, in train mode, relaxed samples (a softmax at each position, through
which the discriminator and the entropy regulariser differentiate) and, in eval mode, one-hot
sequences (what is measured and written).

- :class:`CharResNetGenerator` and :class:`CharResNetDiscriminator`: the character language
  model of Gulrajani et al. 2017 ("Improved training of Wasserstein GANs", section 5.3 and
  its code): 1-D convolutional residual networks; the generator emits every position's
  softmax at once, the discriminator reads one-hot real and softmax generated sequences.
- :class:`LSTMGenerator`: an autoregressive generator, the
  :class:`~gan_je.models.lstm.LSTMLanguageModel` sampled at a temperature; exact
  log-likelihoods (:meth:`LSTMGenerator.log_prob`), maximum likelihood training
  (:meth:`LSTMGenerator.nll`) and adversarial training through the Gumbel-softmax relaxation
  (Jang et al. 2017; Maddison et al. 2017; RelGAN, Nie et al. 2019).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_je.checks import positive_float, positive_int
from gan_je.models._checks import check_samples, shape_tuple
from gan_je.models.lstm import LSTMLanguageModel

#: Gulrajani et al.'s scale of a residual branch: x + 0.3 · branch(x).
RESIDUAL_SCALE = 0.3
#: their convolutions' kernel size along the sequence
KERNEL_SIZE = 5
#: the largest float32 below 1: where Phi(z) rounds to 1, the uniform is clamped to it
BELOW_ONE = 1.0 - 2.0**-24


def sequence_shape(sample_shape: Sequence[int], generator: str) -> tuple[int, int]:
    """``(L, V)`` of token sequences; refuse another shape, V < 2, or ``bounded`` data."""
    shape = shape_tuple(sample_shape)
    if len(shape) != 2 or shape[1] < 2:
        raise ValueError(
            f"{generator} makes token sequences of shape (length, vocab_size >= 2) (data of "
            f"kind 'tokens'), got samples of shape {shape}"
        )
    return shape[0], shape[1]


def _refuse_bounded(bounded: bool, generator: str) -> None:
    if bounded:
        raise ValueError(
            f"{generator} emits distributions over tokens, not values in [-1, 1]: it needs "
            f"data of kind 'tokens' (bounded false)"
        )


def one_hot(ids: Tensor, vocab_size: int) -> Tensor:
    """Ids ``(n, L)`` -> one-hot float32 ``(n, L, V)``."""
    return F.one_hot(ids, vocab_size).to(torch.float32)


class ResBlock1d(nn.Module):
    """``x + 0.3 · conv(relu(conv(relu(x))))``, two width-preserving convolutions of kernel
    size 5 along the sequence (Gulrajani et al.'s ResBlock)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        pad = KERNEL_SIZE // 2
        self.branch = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(width, width, KERNEL_SIZE, padding=pad),
            nn.ReLU(),
            nn.Conv1d(width, width, KERNEL_SIZE, padding=pad),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + RESIDUAL_SCALE * self.branch(x)


class CharResNetGenerator(nn.Module):
    """z ``(B, latent_dim)`` -> sequences ``(B, L, V)`` (Gulrajani et al. 2017).

    A linear layer maps z to ``width`` channels at each of the L positions, ``n_blocks``
    residual blocks (:class:`ResBlock1d`) follow, and a 1x1 convolution (a linear layer
    applied at each position, faster on a CPU for large V) gives each position's V logits.
    Train mode returns their softmax; eval mode the one-hot of their argmax.
    The paper: ``latent_dim`` 128, ``width`` 512, 5 blocks.
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        latent_dim: int = 128,
        width: int = 64,
        n_blocks: int = 5,
        bounded: bool = False,
    ) -> None:
        super().__init__()
        self.length, self.vocab_size = sequence_shape(sample_shape, "CharResNetGenerator")
        _refuse_bounded(bounded, "CharResNetGenerator")
        self.latent_dim = positive_int("latent_dim", latent_dim)
        self.width = positive_int("width", width)
        self.input = nn.Linear(self.latent_dim, self.width * self.length)
        blocks = [ResBlock1d(self.width) for _ in range(positive_int("n_blocks", n_blocks))]
        self.blocks = nn.Sequential(*blocks)
        self.output = nn.Linear(self.width, self.vocab_size)  # the 1x1 convolution

    def logits(self, z: Tensor) -> Tensor:
        """Every position's logits ``(B, L, V)``."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"the generator expects z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}"
            )
        x = self.input(z).view(z.shape[0], self.width, self.length)
        return self.output(self.blocks(x).transpose(1, 2))

    def forward(self, z: Tensor) -> Tensor:
        logits = self.logits(z)
        if self.training:
            return torch.softmax(logits, dim=-1)
        return one_hot(logits.argmax(dim=-1), self.vocab_size)


class CharResNetDiscriminator(nn.Module):
    """Sequences ``(B, L', V)`` -> logits ``(B,)`` (Gulrajani et al. 2017).

    A 1x1 convolution (a linear layer applied at each position) maps each position's V
    values (one-hot or softmax) to ``width`` channels, ``n_blocks`` residual blocks follow,
    and a linear layer reads all L' positions.
    L' is the sequence length, or ``pack`` times it for a PacGAN pack. No normalisation, so
    the WGAN-GP penalty applies. The paper: ``width`` 512, 5 blocks.
    """

    def __init__(self, sample_shape: Sequence[int], width: int = 64, n_blocks: int = 5) -> None:
        super().__init__()
        self.sample_shape = sequence_shape(sample_shape, "CharResNetDiscriminator")
        length, vocab_size = self.sample_shape
        self.width = positive_int("width", width)
        self.input = nn.Linear(vocab_size, self.width)  # the 1x1 convolution
        blocks = [ResBlock1d(self.width) for _ in range(positive_int("n_blocks", n_blocks))]
        self.blocks = nn.Sequential(*blocks)
        self.output = nn.Linear(self.width * length, 1)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer, flattened: ``(B, width · L')``."""
        check_samples(x, self.sample_shape)
        return self.blocks(self.input(x).transpose(1, 2)).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.features(x)).squeeze(1)


class LSTMGenerator(nn.Module):
    """An autoregressive generator: an :class:`~gan_je.models.lstm.LSTMLanguageModel` p
    sampled at ``temperature``, latents ``(B, L)``.

    Eval mode: exact samples of p_tau, one-hot. Token t is drawn by the inverse CDF from
    u_t = Phi(z_t) (the standard normal CDF, so u_t is uniform on [0, 1); clamped below 1),
    so the same latents give the same sequences.

    Train mode: the Gumbel-softmax relaxation (Jang et al. 2017; RelGAN, Nie et al. 2019).
    At step t, with logits o_t and Gumbel noise g_t (from torch's global random stream, not
    from z), the relaxed one-hot is y_t = softmax((o_t / tau + g_t) / gumbel_temperature);
    its argmax is an exact sample of p_tau(x_t | the prefix fed) (the Gumbel-max trick). The
    next step is fed y_t · E (E the embedding matrix). With ``straight_through`` the emitted
    and fed y_t is the one-hot of the argmax, with the gradient of the relaxed one (Bengio et
    al. 2013): the sequences are then exact samples of p_tau.

    Args:
        sample_shape: ``(L, V)``.
        embed_dim, hidden_dim: the language model's sizes (SeqGAN's oracle: 32 and 32).
        temperature: tau, the sampling temperature of eval mode, :meth:`log_prob` and the
            Gumbel-max samples of train mode.
        gumbel_temperature: the relaxation's temperature (-> 0: one-hot, high variance
            gradients; larger: smoother, more biased).
        straight_through: emit and feed hard one-hots (see above). The default: on a tiny
            oracle (V 5, L 6, 400 steps, 3 seeds) relaxed samples at gumbel temperature 1 or
            0.5 collapsed (the discriminator tells soft from one-hot sequences: generated
            entropy 0.01 nats per token against the oracle's 0.86; exact JSD 0.63), at 0.1
            reached JSD 0.38; straight-through 0.35 at every temperature (entropy 1.0).
        bounded: must be false (token distributions are not values in [-1, 1]).
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        embed_dim: int = 32,
        hidden_dim: int = 32,
        temperature: float = 1.0,
        gumbel_temperature: float = 1.0,
        straight_through: bool = True,
        bounded: bool = False,
    ) -> None:
        super().__init__()
        length, vocab_size = sequence_shape(sample_shape, "LSTMGenerator")
        _refuse_bounded(bounded, "LSTMGenerator")
        self.model = LSTMLanguageModel(vocab_size, length, embed_dim, hidden_dim)
        self.latent_dim = length
        self.temperature = positive_float("temperature", temperature)
        self.gumbel_temperature = positive_float("gumbel_temperature", gumbel_temperature)
        if not isinstance(straight_through, bool):
            raise ValueError(f"straight_through must be true or false, got {straight_through!r}")
        self.straight_through = straight_through

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"the generator expects z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}"
            )
        if self.training:
            return self.relaxed(z.shape[0])
        uniforms = torch.special.ndtr(z.to(torch.float32)).clamp(0.0, BELOW_ONE)
        ids = self.model.sample_from_uniforms(uniforms, self.temperature)
        return one_hot(ids, self.model.vocab_size)

    def relaxed(self, n: int) -> Tensor:
        """``n`` Gumbel-softmax relaxed sequences ``(n, L, V)``, differentiable in the
        parameters (see the class docstring)."""
        inputs, state = self.model.initial_state(positive_int("n", n))
        steps = []
        for _ in range(self.model.length):
            logits, state = self.model.step(inputs, state)
            uniforms = torch.rand_like(logits).clamp_(min=torch.finfo(logits.dtype).tiny)
            gumbel = -torch.log(-torch.log(uniforms))
            soft = torch.softmax((logits / self.temperature + gumbel) / self.gumbel_temperature, -1)
            if self.straight_through:
                hard = one_hot(soft.argmax(dim=-1), self.model.vocab_size).to(soft.dtype)
                soft = hard - soft.detach() + soft
            steps.append(soft)
            inputs = soft @ self.model.embedding
        return torch.stack(steps, dim=1)

    def log_prob(self, ids: Tensor) -> Tensor:
        """log p_tau of each sequence of ids ``(n, L)`` at the sampling temperature:
        ``(n,)`` nats per sequence."""
        return self.model.log_prob(ids, self.temperature)

    def nll(self, ids: Tensor) -> Tensor:
        """The teacher-forced negative log-likelihood of ids ``(n, L)`` under p (temperature
        1, what maximum likelihood trains), in nats per token: a 0-dim tensor."""
        ids = self.model.check_ids(ids)  # int64 on the model's device, as cross_entropy needs
        return F.cross_entropy(self.model.logits(ids).flatten(0, 1), ids.flatten())
