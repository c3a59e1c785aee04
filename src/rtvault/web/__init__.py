"""The search web interface: `rtvault serve` (see app.py)."""
