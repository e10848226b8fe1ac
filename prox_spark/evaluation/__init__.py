"""Cleaning quality on whole web pages: the human-gold page sets, their splits and terms of use, and the
shingle-F1 harness that scores any pipeline configuration on them."""
