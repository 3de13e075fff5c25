"""Code the tests share: fixtures' builders, fakes and request scripts (import as ``tests.helpers.<module>``).

pytest finds this package through ``pythonpath = ["."]`` in pyproject.toml; benchmarks (run with
``python -m benchmarks.<name>`` from the repository root) import the data generators from here too.
"""
