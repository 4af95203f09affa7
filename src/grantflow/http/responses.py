"""How the OpenAPI document describes answers that carry no body (PrivX answers 200 with nothing to read)."""

from __future__ import annotations

from typing import Any

from fastapi import Response

# For routes that answer `Response(status_code=200)`: the document then promises no JSON body and no Content-Type.
NO_BODY: dict[str, Any] = {
    "response_class": Response,
    "responses": {200: {"description": "Done; the answer has no body"}},
}
