"""The runner: claims due steps, delivers them over their channels, records what happened."""
