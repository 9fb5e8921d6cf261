"""An LSTM language model over fixed-length token sequences: the synthetic oracle of SeqGAN
(Yu et al. 2017) and the autoregressive text generator share it.

The model factorises the probability of a sequence x = (x_1, ..., x_L) of token ids as

    p(x) = prod_t softmax(W h_t + b)[x_t],   h_t = LSTM(e_{t-1}, h_{t-1}),

where e_0 is a start vector and e_t = E[x_t] the embedding of the token drawn at step t. At a
sampling temperature tau the logits are divided by tau, so p_tau(x) = prod_t
softmax((W h_t + b) / tau)[x_t] is itself a normalised distribution over the V^L sequences:
its log-likelihood (:meth:`LSTMLanguageModel.log_prob`) and its samples
(:meth:`LSTMLanguageModel.sample_from_uniforms`) describe the same distribution, which is
what makes the exact entropies and divergences of :mod:`gan_je.sequence_measures` exact.

Sampling is by the inverse CDF: token t is the first id whose cumulative probability exceeds
a uniform u_t, so a sequence is a deterministic function of L uniforms (the generator's
latents, :class:`gan_je.models.text.LSTMGenerator`) and the same seed gives the same
sequences on every device.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_je.checks import positive_float, positive_int
from gan_je.estimators._inputs import check_ids


class LSTMLanguageModel(nn.Module):
    """p(x) over sequences of ``length`` ids in ``range(vocab_size)``, one LSTM layer.

    Args:
        vocab_size: V, the number of tokens.
        length: L, the number of tokens in every sequence.
        embed_dim: the size of a token's embedding (and of the start vector).
        hidden_dim: the LSTM's hidden size.
    """

    def __init__(
        self, vocab_size: int, length: int, embed_dim: int = 32, hidden_dim: int = 32
    ) -> None:
        super().__init__()
        self.vocab_size = positive_int("vocab_size", vocab_size)
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
        self.length = positive_int("length", length)
        self.embed_dim = positive_int("embed_dim", embed_dim)
        self.hidden_dim = positive_int("hidden_dim", hidden_dim)
        self.embedding = nn.Parameter(torch.randn(self.vocab_size, self.embed_dim) * 0.1)
        self.start = nn.Parameter(torch.zeros(self.embed_dim))
        self.cell = nn.LSTMCell(self.embed_dim, self.hidden_dim)
        self.output = nn.Linear(self.hidden_dim, self.vocab_size)

    @torch.no_grad()
    def init_normal_(self, generator: torch.Generator) -> LSTMLanguageModel:
        """Draw every parameter from N(0, 1) with ``generator`` (SeqGAN's oracle), in a fixed
        order of the parameters' names, so a seed fixes the model on every device."""
        for _, parameter in sorted(self.named_parameters()):
            values = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
            parameter.copy_(values.to(parameter.device, parameter.dtype))
        return self

    def initial_state(self, n: int) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The first step's input (the start vector, ``(n, embed_dim)``) and a zero state."""
        zeros = self.start.new_zeros(n, self.hidden_dim)
        return self.start.expand(n, -1), (zeros, zeros)

    def step(
        self, inputs: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One step: ``inputs`` ``(n, embed_dim)`` (an embedding, or a relaxed one-hot times
        :attr:`embedding`) and the state -> the next token's logits ``(n, V)`` and the state."""
        h, c = self.cell(inputs, state)
        return self.output(h), (h, c)

    def logits(self, ids: Tensor) -> Tensor:
        """Teacher-forced logits ``(n, L, V)``: at position t, those of x_t given x_<t."""
        ids = self.check_ids(ids)
        inputs, state = self.initial_state(ids.shape[0])
        embedded = self.embedding[ids]  # (n, L, E)
        steps = []
        for t in range(self.length):
            logits, state = self.step(inputs, state)
            steps.append(logits)
            inputs = embedded[:, t]
        return torch.stack(steps, dim=1)

    def log_prob(self, ids: Tensor, temperature: float = 1.0) -> Tensor:
        """log p_tau(x) of each sequence of ``ids`` ``(n, L)``: ``(n,)`` nats per sequence."""
        temperature = positive_float("temperature", temperature)
        ids = self.check_ids(ids)  # int64 on the model's device, as gather needs
        log_p = torch.log_softmax(self.logits(ids) / temperature, dim=-1)
        return log_p.gather(-1, ids.unsqueeze(-1)).squeeze(-1).sum(dim=1)

    def sample_from_uniforms(self, uniforms: Tensor, temperature: float = 1.0) -> Tensor:
        """The sequences ``(n, L)`` of ids that the uniforms ``(n, L)`` in [0, 1) pick by the
        inverse CDF of each step's p_tau(x_t | x_<t): token t is the number of cumulative
        probabilities at or below u_t (the last token where rounding leaves u_t above them
        all)."""
        temperature = positive_float("temperature", temperature)
        if uniforms.ndim != 2 or uniforms.shape[1] != self.length:
            raise ValueError(
                f"uniforms must have shape (n, {self.length}), got {tuple(uniforms.shape)}"
            )
        n = uniforms.shape[0]
        inputs, state = self.initial_state(n)
        uniforms = uniforms.to(self.start.device, self.start.dtype)
        ids = []
        for t in range(self.length):
            logits, state = self.step(inputs, state)
            cumulative = torch.softmax(logits / temperature, dim=-1).cumsum(dim=-1)
            token = torch.searchsorted(cumulative, uniforms[:, t : t + 1].contiguous(), right=True)
            token = token.squeeze(1).clamp(max=self.vocab_size - 1)
            ids.append(token)
            inputs = self.embedding[token]
        return torch.stack(ids, dim=1)

    def sample(
        self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """``n`` sequences ``(n, L)`` of ids, from uniforms drawn on the CPU with
        ``generator`` (``None``: torch's global stream)."""
        n = positive_int("n", n)
        return self.sample_from_uniforms(
            torch.rand(n, self.length, generator=generator), temperature
        )

    def check_ids(self, ids: Tensor) -> Tensor:
        """``ids`` as an int64 tensor ``(n, L)`` on the model's device; refuse another shape,
        a float tensor or ids outside ``range(V)`` (:func:`~gan_je.estimators._inputs.
        check_ids`)."""
        return check_ids(ids, "ids", self.length, self.vocab_size).to(self.start.device)
