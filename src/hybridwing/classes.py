"""The name every stage gives the class of hybrids, whatever their parents: the last class of every
model. Imports nothing, so that the challenge export can carry it."""

HYBRID_CLASS = "hybrid"
