"""Generators and discriminators: fully connected (any sample shape) and DCGAN (images)."""

from gan_je.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_
from gan_je.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "dcgan_init_",
]
