"""Data shipped inside the package: the curated vocabulary."""
