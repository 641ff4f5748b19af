"""SFT mixtures: exact ratios of creative triplets to general data, rendering and exports."""
