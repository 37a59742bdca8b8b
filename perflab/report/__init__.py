"""Reports rebuilt from stored results alone.

- ``html.render_run_report(run_dir)`` — the self-contained HTML run report (``index.html``).
- ``view`` (results → display rows), ``plots`` (data → PNG), ``pareto``, ``crops``: pure parts.
- ``runfolder`` — reading ``results.json``, ``samples.csv`` and ``frames/`` of a run folder.

Never imports ``perflab.devices``, ``perflab.workloads`` or ``perflab.emulator``.
"""
