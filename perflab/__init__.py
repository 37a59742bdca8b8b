"""perflab: measure what a super-resolution model costs and gives on real devices, beside bicubic."""

__version__ = "0.1.0"
