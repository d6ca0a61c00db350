"""Figures: counters and histograms recorded with each change, queue depth and live figures, the charts' series, Prometheus."""
