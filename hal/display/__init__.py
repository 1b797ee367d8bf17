"""Customer displays: serial pole display (VFD), a local web page, and simulated."""
