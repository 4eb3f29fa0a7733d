"""After training: embeddings, ensemble uncertainty and triage, label issues, the zero-shot junk filter."""
