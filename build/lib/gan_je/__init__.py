"""gan_je: train GANs with Lightning + Hydra and measure them with k-NN information theory."""

from gan_je import resolvers

#: Where the Hydra configs live: the top-level conf/ folder, shipped as package data.
CONFIG_PATH = "pkg://gan_je.conf"

resolvers.register()
