"""The HTTP application: JSON API and HTML pages over the same library functions."""
