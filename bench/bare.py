"""The baseline: the same framework and server as grantflow (FastAPI on uvicorn, one process) answering a fixed
JSON body, with no authentication and no database. Its access log writes a line per request as `grantflow serve`'s
does (uvicorn's, at INFO), unless `--no-access-log`.

    python bench/bare.py PORT [--no-access-log]
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

BODY = {"id": "7f0c8a32-3c1e-4c5e-9a53-1f6b8ce2a9a1", "status": "WAITING", "name": "bench", "count": 1, "items": []}

app = FastAPI()


@app.get("/bare")
async def bare() -> dict[str, object]:
    return BODY


if __name__ == "__main__":
    # Until 2026-12-01 this ran at log_level "warning", which silenced the access log that grantflow writes.
    access_log = "--no-access-log" not in sys.argv[2:]
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info", access_log=access_log)
