"""What the tests share, in one place (the fixtures themselves are in ``tests/conftest.py``).

- ``phones``: the emulated-phone factory behind the ``phones`` / ``module_phones`` fixtures.
- ``postgres``: a throwaway PostgreSQL cluster (initdb + pg_ctl in a temporary folder, free port).
- ``records``: results.json records (cells, runs, run folders) built the one way every test uses.
- ``matrix_runs``: the matrix and frame tests' run folders.
- ``timing``: ``measure_until_within``, a timing check repeated (bounded) instead of widened.
- ``waiting``: ``wait_until``, polling with a deadline (no test waits without one).
- ``rack``: the rack/nightly/queue tests' light scenario.
- ``cli``: ``cli_commands``, every command of ``perflab`` walked from its command table.
"""
