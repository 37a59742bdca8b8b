"""Neutral things several layers share: value types, name rules, located-YAML loading, paths.

Imports nothing from perflab above it (only perflab.errors).
"""
