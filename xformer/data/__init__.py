"""Datasets, loaders and splits for each domain."""
