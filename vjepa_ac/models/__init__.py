"""vjepa_ac/models"""
