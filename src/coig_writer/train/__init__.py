"""SFT launcher (TRL, full or LoRA) and a tiny model for CPU runs."""
