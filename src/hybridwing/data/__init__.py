"""Dataset tables, image fetching and leakage-free splits."""
