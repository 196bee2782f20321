"""Semi-supervised multimodal representation learning through a Global Workspace."""

__version__ = "0.1.0"
