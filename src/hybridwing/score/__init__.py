"""Hybrid scores, the challenge's evaluation, and prediction from a trained model folder."""
