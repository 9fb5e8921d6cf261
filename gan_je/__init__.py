"""gan_je: train GANs with Lightning + Hydra and measure them with k-NN information theory."""
