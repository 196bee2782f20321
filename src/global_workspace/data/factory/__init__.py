"""The Factory dataset: one table (position, rotation, colour) in a procedural 3-D scene.

scene.py (geometry, camera, light), render.py (vectorised CPU ray casting), captions.py
(seeded grammar and its parser), generate.py (sampling, sharded writing, `generate_factory`).
"""
