"""Datasets out of the store: export, import, statistics, publishing, decontamination, preferences."""
