"""gan_je's Hydra configs, shipped inside the package as ``gan_je.conf`` (read through
``pkg://gan_je.conf``, see ``gan_je.CONFIG_PATH``)."""
