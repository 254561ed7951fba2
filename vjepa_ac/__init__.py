"""vjepa_ac"""
