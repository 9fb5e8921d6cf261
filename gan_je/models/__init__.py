"""Generators and discriminators: fully connected (any sample shape), DCGAN (images) and
for token sequences (Gulrajani et al.'s residual networks, the autoregressive LSTM)."""

from gan_je.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_
from gan_je.models.mlp import MLPDiscriminator, MLPGenerator
from gan_je.models.text import CharResNetDiscriminator, CharResNetGenerator, LSTMGenerator

__all__ = [
    "CharResNetDiscriminator",
    "CharResNetGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "LSTMGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "dcgan_init_",
]
