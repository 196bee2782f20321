"""Frozen unimodal specialists: each turns raw data of one modality into a latent vector.

Importing the package registers the built-in domains `v` (images), `attr` (attribute vector)
and `t` (captions); see base.py to add your own.
"""

from . import attr, text, visual  # noqa: F401  (register the built-in domains)
