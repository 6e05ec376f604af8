"""Bottleneck analysis: SLO burn rates, the USE method, episodes with ranked root causes, predicted bottlenecks, and their evaluation."""
