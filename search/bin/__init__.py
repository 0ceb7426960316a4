"""The command-line binaries (absl apps installed as console scripts)."""
