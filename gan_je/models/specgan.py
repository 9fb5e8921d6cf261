"""SpecGAN (Donahue, McAuley & Puckette 2019, "Adversarial Audio Synthesis"): a DCGAN-like
pair on log-magnitude spectrograms, turned back into sound by Griffin-Lim.

The networks work on SpecGAN's image of a clip, :func:`gan_je.audio.log_spectrogram`
``(C, F, T)`` with ``F = n_fft / 2`` frequency bins and ``T = L / hop`` frames. The
generator declares that form to gan_je (``train_shape``, ``to_train_form``: docs/howto.md,
"What gan_je asks of the networks"): in train mode it returns the image, which the
discriminator, the gradient penalty and the entropy regulariser see, and the real clips are
turned into images likewise; in eval mode it returns the waveform
(:func:`gan_je.audio.griffin_lim`), which is measured, pictured and written.

Both networks have five stride-2 layers with 5 x 5 kernels (the paper's), so F and T must be
multiples of 2^5 = 32; the generator starts at ``(F / 32, T / 32)``:

    the paper, 16 kHz: n_fft 256, hop 128, 16384 samples -> 128 x 128, from 4 x 4
    the CPU presets, 8 kHz: n_fft 128, hop 64, 8192 samples -> 64 x 128, from 2 x 4

(at 8 kHz, n_fft 128 and hop 64 keep the paper's 16 ms windows, 8 ms hops and 62.5 Hz bins:
the image is the lower half of the paper's.) The paper normalises each frequency bin by its
mean and deviation over the training set; here the image is the fixed dB map of
:func:`~gan_je.audio.log_spectrogram` (80 dB onto [-1, 1]), which needs no statistics.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import Tensor, nn

from gan_je.audio import check_stft, griffin_lim, log_spectrogram
from gan_je.checks import positive_int
from gan_je.models._checks import check_samples, shape_tuple

#: the paper's number of stride-2 layers in each network
N_LAYERS = 5
#: their kernel size (square)
KERNEL = 5


def _check_image(shape: tuple[int, ...], network: str) -> tuple[int, int, int]:
    step = 2**N_LAYERS
    if len(shape) != 3 or shape[1] % step or shape[2] % step:
        raise ValueError(
            f"{network} needs spectrograms (channels, bins, frames) with bins and frames "
            f"multiples of {step}, got {shape}: choose n_fft = 2·bins and hop = length / frames "
            f"accordingly (e.g. n_fft 128, hop 64 for 8192 samples; 256 and 128 for 16384)"
        )
    return shape[0], shape[1], shape[2]


def _init_(module: nn.Module) -> None:
    """The paper's code: weights Glorot-uniform (TensorFlow's default), biases 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


class SpecGANGenerator(nn.Module):
    """z ``(B, latent_dim)`` -> in train mode log spectrograms ``(B, C, n_fft/2, L/hop)`` in
    [-1, 1], in eval mode waveforms ``(B, C, L)`` in [-1, 1] (Griffin-Lim, ``n_iter`` rounds).

    A linear layer maps z to ``16·width`` channels at ``(F / 32, T / 32)``; ReLU; five
    transposed convolutions (5 x 5, stride 2) with ``8·width, 4·width, 2·width, width`` and C
    output channels, ReLU between them, tanh after the last. The paper: ``latent_dim`` 100,
    ``width`` 64, n_fft 256 and hop 128 at 16 kHz.

    Attributes:
        train_shape: ``(C, n_fft / 2, L / hop)``, the image's shape.
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        bounded: bool = True,
        n_fft: int = 128,
        hop: int = 64,
        latent_dim: int = 100,
        width: int = 64,
        n_iter: int = 16,
    ) -> None:
        super().__init__()
        shape = shape_tuple(sample_shape)
        if len(shape) != 2 or not bounded:
            raise ValueError(
                f"SpecGANGenerator makes waveforms (channels, length) in [-1, 1] (data of kind "
                f"'waveform'), got samples of shape {shape} with bounded={bounded}"
            )
        self.length = shape[1]
        self.n_fft, self.hop = check_stft(n_fft, hop, self.length, invertible=True)
        if self.length % self.hop:
            raise ValueError(
                f"SpecGANGenerator needs a hop that divides the clip length {self.length} "
                f"(whole frames), got hop={hop}"
            )
        self.train_shape = (shape[0], self.n_fft // 2, self.length // self.hop)
        channels, bins, frames = _check_image(self.train_shape, "SpecGANGenerator")
        self.latent_dim = positive_int("latent_dim", latent_dim)
        self.width = positive_int("width", width)
        self.n_iter = positive_int("n_iter", n_iter)
        self.base = (bins // 2**N_LAYERS, frames // 2**N_LAYERS)
        top = self.width * 2 ** (N_LAYERS - 1)
        self.input = nn.Linear(self.latent_dim, top * self.base[0] * self.base[1])
        layers: list[nn.Module] = []
        for i in range(N_LAYERS):
            n_in = top // 2**i
            n_out = channels if i == N_LAYERS - 1 else n_in // 2
            # output size 2·S_in: (S_in - 1)·2 - 2·2 + 5 + 1
            layers += [nn.ReLU(), nn.ConvTranspose2d(n_in, n_out, KERNEL, 2, 2, 1)]
        self.net = nn.Sequential(*layers, nn.Tanh())
        self.apply(_init_)

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"the generator expects z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}"
            )
        image = self.net(self.input(z).view(z.shape[0], -1, *self.base))
        if self.training:
            return image
        return self.to_waveform(image)

    def to_waveform(self, image: Tensor) -> Tensor:
        """Waveforms ``(B, C, L)`` in [-1, 1] whose log spectrograms are ``image``."""
        clips = griffin_lim(image, self.n_fft, self.hop, self.length, self.n_iter)
        return clips.clamp(-1.0, 1.0)

    def to_train_form(self, real: Tensor) -> Tensor:
        """Real waveforms ``(B, C, L)`` as the images the generator makes in train mode:
        :func:`gan_je.audio.log_spectrogram` ``(B, C, n_fft / 2, L / hop)``."""
        check_samples(real, (self.train_shape[0], self.length))
        return log_spectrogram(real, self.n_fft, self.hop)


class SpecGANDiscriminator(nn.Module):
    """Log spectrograms ``(B, C, F, T)`` -> logits ``(B,)``.

    Five convolutions (5 x 5, stride 2) with ``width, 2·width, …, 16·width`` channels, each
    followed by LeakyReLU(0.2), and a linear layer on the ``16·width x F/32 x T/32``
    features. C may be any number (a PacGAN pack). No normalisation, so the WGAN-GP penalty
    applies. Built by gan_je for the generator's ``train_shape``.
    """

    def __init__(self, sample_shape: Sequence[int], width: int = 64) -> None:
        super().__init__()
        self.sample_shape = _check_image(shape_tuple(sample_shape), "SpecGANDiscriminator")
        channels, bins, frames = self.sample_shape
        self.width = positive_int("width", width)
        sizes = [channels] + [self.width * 2**i for i in range(N_LAYERS)]
        layers: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(sizes):
            layers += [nn.Conv2d(n_in, n_out, KERNEL, 2, padding=2), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.output = nn.Linear(sizes[-1] * (bins >> N_LAYERS) * (frames >> N_LAYERS), 1)
        self.apply(_init_)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer, flattened: ``(B, 16·width · F/32 · T/32)``."""
        check_samples(x, self.sample_shape)
        return self.net(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.features(x)).squeeze(1)
