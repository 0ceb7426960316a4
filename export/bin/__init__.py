"""Binaries of nascell.export (absl apps installed as console scripts)."""
