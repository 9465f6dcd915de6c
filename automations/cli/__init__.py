"""Admin commands: `python -m automations <command>` (see `main`)."""
