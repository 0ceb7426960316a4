"""Every file a run directory holds, with its path named in one place."""
