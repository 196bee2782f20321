"""Frozen unimodal specialists: each turns raw data of one modality into a latent vector.

Importing the package registers the built-in domains `v` (images), `attr` (attribute vector)
and `t` (captions), and `latents` (latents a user brought, given.py); see base.py to add your own.
"""

from . import attr, given, text, visual  # noqa: F401  (register the built-in domains)
