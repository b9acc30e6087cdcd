"""inspect core: segmentation engine, post-processing, rules and plugin hooks."""
__version__ = "0.1.0"
