"""The HTTP API: ``create_app(model, tokenizer)`` -> a FastAPI app.

    GET  /              the chat page (static/chat.html)
    GET  /health        {"status": "ok", "model": {...}, "limits": {...}, "load": {...}}
    POST /v1/generate   {"prompt": ..., "max_new_tokens": ..., "stream": false|true, ...}

Every request is one JSON line in the ``gptlab.serve.access`` log. Generation runs in a worker
thread per request, at most ``max_concurrent`` at once (see ``engine.Gate``), so the event
loop keeps answering (``/health`` works while a long reply is being generated).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, model_validator
from starlette.concurrency import run_in_threadpool
from torch import nn

from gptlab.generate import _check_settings, _check_stop
from gptlab.serve.engine import Busy, Cancelled, Completion, Gate, Job, encode_prompt
from gptlab.serve.limits import Limits

__all__ = ["GenerateRequest", "create_app"]

access_log = logging.getLogger("gptlab.serve.access")
log = logging.getLogger("gptlab.serve")

_MAX_STOPS, _MAX_STOP_CHARS = 8, 100
_STREAM_AHEAD = 64  # pieces a generation thread may run ahead of a slow streaming client
_HTML_HEADERS = {"Content-Security-Policy": "default-src 'self'; script-src 'self' "
                 "'unsafe-inline'; style-src 'self' 'unsafe-inline'",
                 "Cache-Control": "no-cache"}


class GenerateRequest(BaseModel):
    """The body of POST /v1/generate. Types are strict (``"5"`` is not a number, ``1.0`` not
    an integer) and unknown fields are refused; values are checked by gptlab.generate's rules.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str
    max_new_tokens: int | None = None  # None: the server's default (100, or its cap if lower)
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False

    @model_validator(mode="after")
    def _check(self) -> GenerateRequest:
        _check_settings(0 if self.max_new_tokens is None else self.max_new_tokens,
                        self.temperature, self.top_k, self.top_p, self.repetition_penalty,
                        self.seed)
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {self.seed}.")
        stops = self.stops()
        _check_stop(stops, decode=str)
        if len(stops) > _MAX_STOPS or any(len(s) > _MAX_STOP_CHARS for s in stops):
            raise ValueError(f"stop takes at most {_MAX_STOPS} strings of at most "
                             f"{_MAX_STOP_CHARS} characters each.")
        return self

    def stops(self) -> list[str]:
        return [] if self.stop is None else [self.stop] if isinstance(self.stop, str) \
            else list(self.stop)


class _JSON(JSONResponse):
    """JSON as ASCII (a lone surrogate from a character tokenizer is escaped, not an error)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def _error(status: int, message: str, headers: dict[str, str] | None = None,
           **extra: Any) -> _JSON:
    return _JSON({"error": message, **extra}, status_code=status, headers=headers)


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode("ascii")


def _describe(errors: list[dict[str, Any]]) -> str:
    """One readable sentence from pydantic's errors."""
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        if e.get("type") == "json_invalid":
            where = f" at character {loc[0]}" if loc else ""
            parts.append(f"the body is not valid JSON ({e.get('ctx', {}).get('error', '')}"
                         f"{where})")
            continue
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field (the fields are: " + ", ".join(GenerateRequest.model_fields) + ")"
        elif e.get("type") == "missing":
            msg = "required"
        elif e.get("type") == "model_attributes_type" and not loc:
            msg = ('the body must be a JSON object such as {"prompt": "ROMEO:\\n"}, sent with '
                   "Content-Type: application/json")
        # str | list[str] names the member that failed: report the field once
        field = ".".join(x for x in loc if x not in ("str", "list[str]"))
        parts.append(f"{field}: {msg}" if field else msg)
    return "; ".join(dict.fromkeys(parts)) or "invalid request"


class _AccessLog:
    """Pure ASGI middleware: one JSON line per request, written when the response is done
    (after the last streamed token); and a 413 for a body over ``max_body`` bytes."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        usage: dict[str, Any] = {}
        scope["gptlab.usage"] = usage
        status = [500]

        async def send_and_note(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            length = dict(scope.get("headers") or []).get(b"content-length", b"0")
            if length.isdigit() and int(length) > self.max_body:
                response = _error(413, f"the request body is {int(length)} bytes, over this "
                                  f"server's limit of {self.max_body}.")
                await response(scope, receive, send_and_note)
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            client = scope.get("client")
            access_log.info(json.dumps({
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "method": scope.get("method"), "path": scope.get("path"), "status": status[0],
                "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"),
                "finish_reason": usage.get("finish_reason"),
                "elapsed_s": round(time.perf_counter() - start, 4),
                "client": f"{client[0]}:{client[1]}" if client else None}))


def _model_info(model: nn.Module, tokenizer: Any, name: str) -> dict[str, Any]:
    cfg = getattr(model, "config", None)
    param = next(model.parameters(), None)
    info: dict[str, Any] = {
        "name": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": getattr(cfg, "vocab_size", None),
        "block_size": getattr(cfg, "block_size", None),
        "tokenizer": repr(tokenizer),
        "device": str(param.device) if param is not None else "cpu",
        "dtype": str(param.dtype).removeprefix("torch.") if param is not None else None,
    }
    for key in ("n_layer", "n_head", "n_embd"):
        if isinstance(getattr(cfg, key, None), int):
            info[key] = getattr(cfg, key)
    return info


def create_app(model: nn.Module, tokenizer: Any, *, max_new_tokens_cap: int = 1000,
               max_prompt_chars: int = 20_000, max_concurrent: int = 1, max_queue: int = 16,
               model_name: str = "gpt") -> FastAPI:
    """A FastAPI app that serves ``model`` (a GPT, or any model ``gptlab.generate`` runs)
    with ``tokenizer`` (``encode``/``decode``). Run it with ``uvicorn.run(app)``, or use
    ``gptlab serve`` / ``start_server``. The model is put in eval mode and shared by all
    requests; ValueError for a limit out of range (see ``Limits``)."""
    limits = Limits(max_new_tokens_cap, max_prompt_chars, max_concurrent, max_queue)
    model_vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(model_vocab, int) and tokenizer.vocab_size > model_vocab:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model only "
                         f"{model_vocab}: they do not belong together.")
    model.eval()  # once, for all threads (generate restores the mode it finds)
    info = _model_info(model, tokenizer, model_name)
    page = resources.files("gptlab.serve").joinpath("static/chat.html").read_text("utf-8")
    gate = Gate(limits.max_concurrent, limits.max_queue)

    app = FastAPI(title="gptlab serve", version="1",
                  description=f"Text generation with {model_name} ({info['parameters']:,} "
                              "parameters). POST /v1/generate; GET / is a chat page.")
    app.state.limits, app.state.gate, app.state.model_info = limits, gate, info
    # room for every character escaped in the JSON (a surrogate pair: 12 bytes), and the rest
    app.add_middleware(_AccessLog, max_body=12 * limits.max_prompt_chars + 65_536)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> _JSON:
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")}
                  for e in exc.errors()]
        return _error(422, _describe(list(exc.errors())), detail=json.loads(
            json.dumps(errors, default=str)))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(page, headers=_HTML_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/health")
    async def health() -> _JSON:
        return _JSON({"status": "ok", "model": info, "limits": limits.to_dict(),
                      "load": {"active": gate.active, "waiting": gate.waiting}})

    @app.post("/v1/generate")
    async def generate(body: GenerateRequest, request: Request) -> Any:
        usage = request.scope.setdefault("gptlab.usage", {})
        max_new = limits.default_max_new_tokens if body.max_new_tokens is None \
            else body.max_new_tokens
        if max_new > limits.max_new_tokens_cap:
            return _error(422, f"max_new_tokens: {max_new} is over this server's cap of "
                          f"{limits.max_new_tokens_cap} (--max-new-tokens-cap).")
        if len(body.prompt) > limits.max_prompt_chars:
            seen = (f" (the model sees only its last {info['block_size']} tokens anyway)"
                    if isinstance(info["block_size"], int) else "")
            return _error(422, f"prompt: {len(body.prompt)} characters is over this server's "
                          f"limit of {limits.max_prompt_chars} (--max-prompt-chars); send a "
                          f"shorter prompt{seen}.")
        try:
            ids = await run_in_threadpool(encode_prompt, tokenizer, body.prompt)
        except ValueError as e:
            return _error(422, f"prompt: {e}")
        usage["prompt_tokens"] = len(ids)
        job = Job(model, tokenizer.decode, ids, max_new, body.temperature, body.top_k,
                  body.top_p, body.repetition_penalty, tuple(body.stops()), body.seed)
        try:
            await gate.acquire()
        except Busy:
            return _error(503, f"the server is busy: {gate.active} request(s) generating and "
                          f"{gate.waiting} waiting, the most it queues (--max-queue). Try "
                          "again shortly.", headers={"Retry-After": str(gate.retry_after())})
        if body.stream:
            return _stream(job, gate, usage)
        return await _complete(job, gate, usage, request)

    return app


def _start(job: Job, gate: Gate, emit: Any, cancel: threading.Event,
           loop: asyncio.AbstractEventLoop) -> asyncio.Future[Completion]:
    """Run ``job`` in a new thread that holds the gate until it ends; a future of the result."""
    fut: asyncio.Future[Completion] = loop.create_future()

    def settle(result: Completion | None, error: BaseException | None) -> None:
        if fut.done():
            return
        if error is None:
            fut.set_result(result)  # type: ignore[arg-type]
        else:
            fut.set_exception(error)

    def work() -> None:
        start = time.perf_counter()
        result, error = None, None
        try:
            result = job.run(emit, cancel)
        except Exception as e:  # a bug or a model error: logged, and reported to the client
            log.exception("generation failed")
            error = e
        finally:
            gate.release_threadsafe(loop, time.perf_counter() - start)
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    threading.Thread(target=work, name="gptlab-generate", daemon=True).start()
    return fut


async def _complete(job: Job, gate: Gate, usage: dict[str, Any], request: Request) -> Any:
    cancel = threading.Event()
    fut = _start(job, gate, lambda piece: None, cancel, asyncio.get_running_loop())
    try:
        while not fut.done():  # wait, noticing a client that goes away
            await asyncio.wait({fut}, timeout=0.5)
            if not fut.done() and await request.is_disconnected():
                cancel.set()
        result = fut.result()
    except Exception as e:  # noqa: BLE001  (the worker's error, already logged)
        return _error(500, f"generation failed: {type(e).__name__}: {e}")
    finally:
        cancel.set()
    usage.update(result.usage())
    return _JSON({"text": result.text, **result.usage()})


class _EventStream(StreamingResponse):
    """A StreamingResponse that calls ``on_close`` however it ends (also when never started)."""

    def __init__(self, content: Any, on_close: Any) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


def _stream(job: Job, gate: Gate, usage: dict[str, Any]) -> _EventStream:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()
    credits = threading.Semaphore(_STREAM_AHEAD)
    cancel = threading.Event()

    def emit(piece: str) -> None:  # in the worker thread
        while not credits.acquire(timeout=0.2):
            if cancel.is_set():
                raise Cancelled
        if cancel.is_set():
            raise Cancelled
        loop.call_soon_threadsafe(queue.put_nowait, piece)

    fut = _start(job, gate, emit, cancel, loop)
    usage.update(finish_reason="cancelled", completion_tokens=0)

    async def events() -> Any:
        sent = 0
        while True:
            get = asyncio.ensure_future(queue.get())
            await asyncio.wait({get, fut}, return_when=asyncio.FIRST_COMPLETED)
            if not get.done():  # the job ended: what it emitted is all in the queue
                get.cancel()
                while not queue.empty():
                    sent += 1
                    yield _sse({"token": queue.get_nowait()})
                break
            credits.release()
            sent += 1
            usage["completion_tokens"] = sent
            yield _sse({"token": get.result()})
        usage["completion_tokens"] = sent
        try:
            result = fut.result()
        except Exception as e:  # noqa: BLE001  (the worker's error, already logged)
            yield _sse({"error": f"generation failed: {type(e).__name__}: {e}"})
            usage["finish_reason"] = "error"
            return
        usage.update(result.usage())
        yield _sse({"done": True, **result.usage()})

    return _EventStream(events(), on_close=cancel.set)
