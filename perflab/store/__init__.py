"""Run folders, the results schema, and the results database."""
