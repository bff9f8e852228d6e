"""Reports: figures from arrays, a run's PNGs, the HTML report."""
