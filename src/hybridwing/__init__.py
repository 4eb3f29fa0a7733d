"""hybridwing: butterfly subspecies classification and hybrid detection."""

__version__ = "0.1.0"
