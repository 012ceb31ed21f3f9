"""Baselines: one-shot masks from scores (magnitude, Wanda, RIA) and SparseGPT's OBS saliency."""
