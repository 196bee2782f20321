"""Frozen unimodal specialists: each turns raw data of one modality into a latent vector."""
