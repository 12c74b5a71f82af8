"""What only the notebooks use: interactive panels (``widgets``), figures (``plotting``) and the
model cache of the panels (``cache``). The top layer: it may import anything, nothing imports it."""
