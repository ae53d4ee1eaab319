"""The Dynamic Risk Assessment System as a library; the top-level scripts are thin command lines over it.

docs/architecture.md has the module map. Importing the package does nothing.
"""
