"""Analyses over stored records (dataset statistics; later: diversity, win rates)."""
