"""Procedural synthetic Heliconius-like collection with ground-truth masks (the embedded default)."""
