"""Shared plumbing for the Dynamic Risk Assessment System.

Everything the stage scripts have in common lives here once: resolving
config.json into paths (`config`), the data schema (`schema`), atomic file
writes and the run lock (`fileio`), the production deployment layout
(`deploy`), the run history (`history`) and the command-line wrapper (`cli`).

Nothing in this package imports pandas, numpy or scikit-learn at import time,
so the cron job's "nothing new" path stays cheap.
"""
