"""BioCLIP fine-tuning: the last vision blocks and a classifier head, at two learning rates."""
