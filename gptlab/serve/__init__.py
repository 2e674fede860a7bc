"""Serving a GPT over HTTP (lesson 12): a JSON API with streaming, and a chat page.

    gptlab serve --ckpt runs/shakespeare-char              # then open http://127.0.0.1:8000/

    from gptlab.serve import start_server                  # the same from Python / a notebook
    with start_server("runs/shakespeare-char") as server:
        httpx.post(f"{server.url}/v1/generate", json={"prompt": "ROMEO:\\n"}).json()

    from gptlab.serve import create_app                    # the FastAPI app itself
    app = create_app(model, tokenizer, max_new_tokens_cap=500)

The API:
    POST /v1/generate  {"prompt": str, "max_new_tokens": int, "temperature": float,
                        "top_k": int, "top_p": float, "stop": str | [str], "seed": int,
                        "stream": bool}
        -> {"text", "prompt_tokens", "completion_tokens", "finish_reason" ("length" |
            "stop"), "elapsed_s", "tokens_per_s"}; the text never includes the stop string.
        With "stream": true, Server-Sent Events: one `data: {"token": piece}` per generated
        token (a piece may be empty while text is held back), then
        `data: {"done": true, "finish_reason", "prompt_tokens", ...}`.
        422 for a bad request (with an "error" message), 503 + Retry-After when busy.
    GET /health        {"status": "ok", "model": {...}, "limits": {...}, "load": {...}}
    GET /              the chat page

The chat page writes the conversation as a play, the format of ``gptlab.chat`` (lesson 12):
each turn ``f"{SPEAKER}:\n{text}\n\n"``, then the cue ``f"{BOT}:\n"``, generating with
``stop="\n\n"``; the oldest whole turns are dropped to fit the model's context.

Modules: ``limits`` (Limits), ``engine``
(generation in worker threads, stop strings, the queue), ``app`` (FastAPI), ``process``
(start_server), ``cli`` (the command). Importing this package loads nothing heavy: torch and
FastAPI load on first use of ``create_app``.
"""

from __future__ import annotations

from typing import Any

from gptlab.serve.limits import Limits
from gptlab.serve.process import ServerProcess, start_server

__all__ = ["GenerateRequest", "Limits", "ServerProcess", "create_app", "start_server"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "GenerateRequest"):
        from gptlab.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'gptlab.serve' has no attribute {name!r}")
