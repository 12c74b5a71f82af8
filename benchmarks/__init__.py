"""Side-by-side speed measurements of ldm_mini (``make bench``); see benchmarks/README.md."""
