"""The public gift pages: give, thank you."""
