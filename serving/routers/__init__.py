"""HTTP routers, one module per resource, each exposing ``router``."""
