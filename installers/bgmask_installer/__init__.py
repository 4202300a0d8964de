"""bgmask's per-user installer: standard library only, runnable by any Python >= 3.10."""
