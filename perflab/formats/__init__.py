"""Pure parsers of what measurement tools print (text in, values out; no I/O).

Below workloads and tracing, which both read the same tool output; imports only core and
errors (checked by import-linter, see pyproject.toml).
"""
