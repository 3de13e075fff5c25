"""``JSONResponse`` rendered with orjson (FastAPI's own ``ORJSONResponse`` is deprecated)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    """JSON response serialised by orjson: several times faster than the stdlib encoder on our payloads."""

    def render(self, content: Any) -> bytes:
        """Return the body bytes."""
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
