"""The global workspace: model, losses, presets, trainer and evaluation."""
