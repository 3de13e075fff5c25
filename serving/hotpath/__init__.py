"""The hot path: what lets the busiest endpoints skip FastAPI's per-request machinery, in one place.

- ``routes``: the hot route table, derived from the routers (a rule on an endpoint is checked on both paths);
- ``reads`` / ``writes``: ASGI middlewares answering well-formed, cached-auth reads and loyalty writes;
- ``redis_mux``: one multiplexed Redis connection per worker for those reads and ledger steps;
- ``http_protocol``: uvicorn's httptools protocol writing each response in one system call.

Anything the hot path does not serve falls through to the routers, which give the one canonical answer.
``tests/e2e/test_hotpath_parity.py`` sends the same requests through both paths and compares the bytes.
"""
