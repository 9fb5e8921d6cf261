"""Generators and discriminators: fully connected (any sample shape), DCGAN and SNGAN's
residual networks (images), for token sequences (Gulrajani et al.'s residual networks, the
autoregressive LSTM) and for waveforms (WaveGAN, SpecGAN)."""

from gan_je.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_
from gan_je.models.mlp import MLPDiscriminator, MLPGenerator
from gan_je.models.resnet import ResNetDiscriminator, ResNetGenerator
from gan_je.models.specgan import SpecGANDiscriminator, SpecGANGenerator
from gan_je.models.text import CharResNetDiscriminator, CharResNetGenerator, LSTMGenerator
from gan_je.models.wavegan import WaveGANDiscriminator, WaveGANGenerator, phase_shuffle

__all__ = [
    "CharResNetDiscriminator",
    "CharResNetGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "LSTMGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "SpecGANDiscriminator",
    "SpecGANGenerator",
    "WaveGANDiscriminator",
    "WaveGANGenerator",
    "dcgan_init_",
    "phase_shuffle",
]
