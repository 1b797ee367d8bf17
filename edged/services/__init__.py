"""The services, one folder each, behind one seam: `setup(ctx, *, deps)` (see `part.py`)."""
