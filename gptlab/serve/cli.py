"""``gptlab serve --ckpt DIR``: serve a checkpoint over HTTP (a JSON API and a chat page).

The parser imports nothing heavy; torch, FastAPI and uvicorn load when the command runs.
Order of work: check the limits and that the checkpoint's files are there, check the port is
free, load the checkpoint, bind the port, then serve; each step fails with a clear message
and exit status 1 (2 for bad arguments) before the next.
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from gptlab.serve.limits import Limits

LISTENING = "gptlab serve: listening on "  # start_server reads the URL from this line


def add_parsers(sub: Any) -> None:
    """Add the ``serve`` subcommand to the ``gptlab`` parser."""
    d = Limits()
    p = sub.add_parser(
        "serve", help="serve a checkpoint: an HTTP API with streaming, and a chat page",
        description="Serve a checkpoint folder (from `gptlab train`, with its tokenizer.json) "
        "over HTTP: GET / is a chat page, POST /v1/generate the JSON API (with Server-Sent "
        "Events when \"stream\": true), GET /health the model and limits.")
    p.add_argument("--ckpt", required=True, help="checkpoint folder (from `gptlab train`)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; "
                        "0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument("--max-new-tokens-cap", type=int, default=d.max_new_tokens_cap,
                   help=f"most tokens one request may generate (default {d.max_new_tokens_cap})")
    p.add_argument("--max-prompt-chars", type=int, default=d.max_prompt_chars,
                   help=f"longest prompt in characters (default {d.max_prompt_chars})")
    p.add_argument("--max-concurrent", type=int, default=d.max_concurrent,
                   help=f"requests generating at once (default {d.max_concurrent})")
    p.add_argument("--max-queue", type=int, default=d.max_queue,
                   help=f"requests waiting their turn; more get 503 (default {d.max_queue})")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--name", help="model name shown by /health and the page (default: the "
                                  "checkpoint folder's name)")
    p.set_defaults(func=cmd_serve)


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else \
        f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); OSError with a clear message when that fails."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise OSError(f"cannot listen on {host!r}: unknown host ({e.strerror}).") from None
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":  # (on Windows it would let two servers share a port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise OSError(f"port {port} on {host} is already in use (another server is "
                          f"running there?). Stop it, or choose another port: --port "
                          f"{port + 1 if port else 8001}, or --port 0 for any free one.") from None
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}.") from None
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        limits = Limits(args.max_new_tokens_cap, args.max_prompt_chars, args.max_concurrent,
                        args.max_queue)
    except ValueError as e:
        return _fail(str(e), 2)
    if not 0 <= args.port <= 65535:
        return _fail(f"--port must be in 0..65535 (0: any free port), got {args.port}.", 2)
    ckpt = Path(args.ckpt)
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json")
               if not (ckpt / f).is_file()]
    if missing:
        what = "does not exist" if not ckpt.exists() else f"lacks {', '.join(missing)}"
        return _fail(f"cannot serve {ckpt}: the folder {what}. --ckpt takes a checkpoint "
                     "folder from `gptlab train` (config.json, model.safetensors and "
                     "tokenizer.json).")

    try:  # a port in use fails now, in a second, not after loading torch and the model
        bind(args.host, args.port).close()
    except OSError as e:
        return _fail(str(e))

    import torch  # noqa: F401  (heavy imports only now)

    from gptlab.device import pick_device
    from gptlab.model import GPT
    from gptlab.tokenizers import load_tokenizer

    try:
        device = pick_device(args.device)
    except (ValueError, RuntimeError) as e:
        return _fail(str(e), 2)
    # A damaged or foreign checkpoint: say which part and why, with no traceback.
    try:
        model = GPT.load(ckpt, map_location=device)
    except Exception as e:  # noqa: BLE001  (whatever the damage: a message, no traceback)
        return _fail(f"cannot load the checkpoint in {ckpt}: its model (config.json, "
                     f"model.safetensors) is damaged or not a gptlab model: "
                     f"{type(e).__name__}: {e}. Fix: copy it again, or train it again.")
    try:
        tokenizer = load_tokenizer(ckpt / "tokenizer.json")
    except Exception as e:  # noqa: BLE001
        return _fail(f"cannot load the checkpoint in {ckpt}: its tokenizer.json is damaged: "
                     f"{type(e).__name__}: {e}")

    import uvicorn

    from gptlab.serve.app import access_log, create_app

    try:
        app = create_app(model, tokenizer, model_name=args.name or ckpt.resolve().name,
                         **vars(limits))
    except ValueError as e:
        return _fail(f"cannot serve {ckpt}: {e}")
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        return _fail(str(e))
    port = sock.getsockname()[1]
    url = _url(args.host, port)
    info = app.state.model_info
    n = info["parameters"]
    size = f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n:,}"
    print(f"gptlab serve: {info['name']} ({size} parameters, "
          f"{info['tokenizer']}, {info['device']})", flush=True)
    print(f"{LISTENING}{url}", flush=True)
    print(f"  chat page:  {url}/   (open it in a browser)\n"
          f"  API:        POST {url}/v1/generate   health: GET {url}/health   docs: {url}/docs\n"
          f"  limits:     {limits.max_new_tokens_cap} new tokens, {limits.max_prompt_chars} "
          f"prompt characters, {limits.max_concurrent} at a time, {limits.max_queue} queued\n"
          "  Stop it with Ctrl+C.", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"  note: listening on {args.host}: other machines can reach this server. "
              "It has no authentication.", flush=True)

    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=3)
    # uvicorn shuts down gracefully on Ctrl+C / SIGTERM, then raises the signal again: end
    # quietly then, with status 0, instead of a traceback.
    old_term = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, old_term)
    print("gptlab serve: stopped.", flush=True)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
