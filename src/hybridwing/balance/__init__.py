"""Class balancing: every training class augmented to a minimum size, reproducibly."""
