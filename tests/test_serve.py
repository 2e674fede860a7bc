"""gptlab.serve in-process: the text pieces, the API through FastAPI's TestClient, the queue
with a model held mid-generation, and the command's bad-input paths (no server is left
running: nothing here binds a port except the port-in-use test's own socket)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from serve_fixtures import TEXT, BigramModel, GatedModel, save_checkpoint, tiny_gpt

from gptlab import cli
from gptlab.generate import generate
from gptlab.serve import Limits, create_app, start_server
from gptlab.serve.engine import TextStream, encode_prompt
from gptlab.tokenizers import CharTokenizer

PROMPT = "ROMEO:\nBut soft"


@pytest.fixture(scope="module")
def tok() -> CharTokenizer:
    return CharTokenizer(TEXT)


@pytest.fixture(scope="module")
def model(tok):
    return tiny_gpt(tok)


@pytest.fixture(scope="module")
def client(model, tok):
    app = create_app(model, tok, max_new_tokens_cap=50, max_prompt_chars=200,
                     model_name="tiny")
    with TestClient(app) as c:
        yield c


def events(body: str) -> list[dict]:
    assert body.endswith("\n\n")
    chunks = body.split("\n\n")[:-1]
    assert all(c.startswith("data: ") for c in chunks), chunks
    return [json.loads(c[len("data: "):]) for c in chunks]


# ---------------------------------------------------------------------------- pieces


def test_text_stream_one_piece_per_token_joined_and_stopped(tok):
    ts = TextStream(tok.decode, stop=["\n\n", "Ay"])
    pieces = []
    for i, c in enumerate("hi\nthere\n\nlater"):
        piece, stopped = ts.push(tok.stoi.get(c, tok.stoi["h"]))
        pieces.append(piece)
        if stopped:
            break
    assert "".join(pieces) == "hi\nthere"  # the stop string is not part of the text
    assert i == len("hi\nthere\n\n") - 1 and pieces[2] == ""  # "\n" held until it is clear
    assert pieces[3] == "\nt"


def test_text_stream_flushes_a_held_prefix_at_the_last_token(tok):
    ts = TextStream(tok.decode, stop=["\n\n"])
    assert ts.push(tok.stoi["a"]) == ("a", False)
    assert ts.push(tok.stoi["\n"]) == ("", False)
    assert ts.push(tok.stoi["\n"], last=False) == ("", True)
    ts = TextStream(tok.decode, stop=["\n\n"])
    ts.push(tok.stoi["a"])
    assert ts.push(tok.stoi["\n"], last=True) == ("\n", False)


def test_text_stream_waits_for_whole_utf8_characters():
    text = "h\u00e9llo \u20ac \U0001f600!"
    data = list(text.encode("utf-8"))  # a byte-level "tokenizer": one token per byte
    ts = TextStream(lambda ids: bytes(ids).decode("utf-8", errors="replace"))
    pieces = [ts.push(b, last=i == len(data) - 1)[0] for i, b in enumerate(data)]
    assert "".join(pieces) == text and "\ufffd" not in "".join(pieces)
    assert len(pieces) == len(data)


def test_encode_prompt_names_unknown_characters(tok):
    with pytest.raises(ValueError, match="2 character.*'z', '\u00e9'.*position 1"):
        encode_prompt(tok, "Rz\u00e9z")
    assert encode_prompt(tok, "") == tok.encode("\n")


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_queue must be an integer >= 0"):
        Limits(max_queue=-1)
    with pytest.raises(ValueError, match="max_concurrent"):
        Limits(max_concurrent=0)
    assert Limits(max_new_tokens_cap=20).default_max_new_tokens == 20


def test_create_app_refuses_a_tokenizer_bigger_than_the_model(tok):
    small = tiny_gpt(CharTokenizer("abc"))
    with pytest.raises(ValueError, match="do not belong together"):
        create_app(small, tok)
    with pytest.raises(ValueError, match="max_new_tokens_cap"):
        create_app(small, CharTokenizer("abc"), max_new_tokens_cap=0)


# ---------------------------------------------------------------------------- the API


def test_health(client, tok):
    h = client.get("/health").json()
    assert h["status"] == "ok"
    assert h["model"]["name"] == "tiny" and h["model"]["vocab_size"] == tok.vocab_size
    assert h["model"]["block_size"] == 32 and h["model"]["parameters"] > 0
    assert h["limits"]["max_new_tokens_cap"] == 50 and h["limits"]["max_prompt_chars"] == 200
    assert h["load"] == {"active": 0, "waiting": 0}


def test_generate_greedy_is_the_library_result(client, model, tok):
    r = client.post("/v1/generate", json={"prompt": PROMPT, "max_new_tokens": 30,
                                          "temperature": 0})
    assert r.status_code == 200, r.text
    out = r.json()
    ids = tok.encode(PROMPT)
    expected = tok.decode(generate(model, ids, 30, temperature=0)[len(ids):].tolist())
    assert out["text"] == expected
    assert out["prompt_tokens"] == len(ids) and out["completion_tokens"] == 30
    assert out["finish_reason"] == "length"
    assert out["elapsed_s"] >= 0 and out["tokens_per_s"] >= 0


def test_generate_seeded_sampling_repeats(client, model, tok):
    body = {"prompt": PROMPT, "max_new_tokens": 25, "temperature": 1.0, "top_k": 10,
            "top_p": 0.95, "seed": 7}
    first = client.post("/v1/generate", json=body).json()["text"]
    assert client.post("/v1/generate", json=body).json()["text"] == first
    ids = tok.encode(PROMPT)
    lib = generate(model, ids, 25, temperature=1.0, top_k=10, top_p=0.95, seed=7)
    assert first == tok.decode(lib[len(ids):].tolist())
    others = {client.post("/v1/generate", json={**body, "seed": s}).json()["text"]
              for s in range(8, 12)}
    assert others != {first}


def test_defaults_and_zero_tokens(client):
    out = client.post("/v1/generate", json={"prompt": PROMPT}).json()
    assert out["completion_tokens"] == 50  # the default (100) is capped
    out = client.post("/v1/generate", json={"prompt": PROMPT, "max_new_tokens": 0}).json()
    assert out["text"] == "" and out["completion_tokens"] == 0 and out["finish_reason"] == "length"
    out = client.post("/v1/generate", json={"prompt": "", "max_new_tokens": 3}).json()
    assert out["prompt_tokens"] == 1 and out["completion_tokens"] == 3


def test_stream_events_join_to_the_greedy_text(client):
    body = {"prompt": PROMPT, "max_new_tokens": 20, "temperature": 0}
    text = client.post("/v1/generate", json=body).json()["text"]
    r = client.post("/v1/generate", json={**body, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    evs = events(r.text)
    tokens, done = evs[:-1], evs[-1]
    assert len(tokens) == 20 and all(set(e) == {"token"} for e in tokens)
    assert "".join(e["token"] for e in tokens) == text
    assert done["done"] is True and done["finish_reason"] == "length"
    assert done["completion_tokens"] == 20 and done["prompt_tokens"] == len(PROMPT)
    assert {"elapsed_s", "tokens_per_s"} <= set(done)


def test_stop_strings(tok):
    # a -> b -> c -> a -> ...: "abcabc..."; the stop "ca" spans two tokens
    bigram = BigramModel(tok, {"a": "b", "b": "c", "c": "a"}, default="a")
    with TestClient(create_app(bigram, tok, max_new_tokens_cap=40)) as c:
        body = {"prompt": "R", "max_new_tokens": 40, "temperature": 0, "stop": ["ca", "zz"]}
        out = c.post("/v1/generate", json=body).json()
        assert out["text"] == "ab" and out["finish_reason"] == "stop"
        assert out["completion_tokens"] == 4  # a, b, c, a: the fourth completes "ca"
        evs = events(c.post("/v1/generate", json={**body, "stream": True}).text)
        assert [e.get("token") for e in evs[:-1]] == ["a", "b", "", ""]
        assert evs[-1]["finish_reason"] == "stop" and evs[-1]["completion_tokens"] == 4
        out = c.post("/v1/generate", json={**body, "stop": "\n\n", "max_new_tokens": 5}).json()
        assert out["text"] == "abcab" and out["finish_reason"] == "length"


@pytest.mark.parametrize("body, status, message", [
    ('{"prompt": "R",', 422, "not valid JSON"),
    ('["R"]', 422, "must be a JSON object"),
    ("{}", 422, "prompt: required"),
    ({"prompt": 5}, 422, "prompt: Input should be a valid string"),
    ({"prompt": "R", "max_new_tokens": "5"}, 422,
     "max_new_tokens: Input should be a valid integer"),
    ({"prompt": "R", "max_new_tokens": 2.5}, 422, "max_new_tokens"),
    ({"prompt": "R", "stream": "yes"}, 422, "stream: Input should be a valid boolean"),
    ({"prompt": "R", "max_tokens": 5}, 422, "max_tokens: unknown field"),
    ({"prompt": "R", "temperature": -0.5}, 422, "temperature must be a number >= 0"),
    ({"prompt": "R", "top_k": 0}, 422, "top_k must be an integer >= 1"),
    ({"prompt": "R", "top_p": 0}, 422, "top_p must be in (0, 1]"),
    ({"prompt": "R", "top_p": 1.5}, 422, "top_p must be in (0, 1]"),
    ({"prompt": "R", "max_new_tokens": -1}, 422, "max_new_tokens must be an integer >= 0"),
    ({"prompt": "R", "max_new_tokens": 51}, 422, "over this server's cap of 50"),
    ({"prompt": "R" * 201}, 422, "201 characters is over this server's limit of 200"),
    ({"prompt": "R\u00e9\u20ac"}, 422, "does not know: '\u00e9', '\u20ac'"),
    ({"prompt": "R", "stop": ""}, 422, "stop must hold non-empty strings"),
    ({"prompt": "R", "seed": -3}, 422, "seed must be an integer in [0, 2**63)"),
    ({"prompt": "R", "repetition_penalty": 0}, 422, "repetition_penalty must be a number > 0"),
])
def test_bad_requests_get_a_clear_422_and_the_server_goes_on(client, body, status, message):
    if isinstance(body, str):
        r = client.post("/v1/generate", content=body,
                        headers={"content-type": "application/json"})
    else:
        r = client.post("/v1/generate", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"], r.json()
    assert client.post("/v1/generate", json={"prompt": "R", "max_new_tokens": 2}).status_code == 200


def test_a_huge_body_is_refused_before_it_is_read(client):
    r = client.post("/v1/generate", content=b"x" * 200_000,
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over this server's limit" in r.json()["error"]


def test_access_log_is_one_json_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="gptlab.serve.access"):
        client.post("/v1/generate", json={"prompt": PROMPT, "max_new_tokens": 3})
        client.post("/v1/generate", json={"prompt": PROMPT, "top_k": 0})
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if r.name == "gptlab.serve.access"]
    ok, bad = lines[-2:]
    assert ok["method"] == "POST" and ok["path"] == "/v1/generate" and ok["status"] == 200
    assert ok["prompt_tokens"] == len(PROMPT) and ok["completion_tokens"] == 3
    assert ok["elapsed_s"] >= 0 and ok["client"]
    assert bad["status"] == 422 and bad["completion_tokens"] is None


def test_chat_page(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    for part in ('id="prompt"', 'id="send"', 'id="user" value="ROMEO"',
                 'id="bot" value="JULIET"', 'id="temperature"', 'id="max-tokens"',
                 "v1/generate", "getReader()", 'const STOP = "\\n\\n"'):
        assert part in page, part
    assert "innerHTML" not in page and "http://" not in page and "https://" not in page


# ---------------------------------------------------------------------------- the queue


def test_queue_overflow_gets_503_and_the_server_recovers(model, tok):
    """One request generating, two waiting (max_queue=2): a fourth is refused at once with
    503 and Retry-After; /health answers meanwhile; all three finish once released."""
    gated = GatedModel(model)
    app = create_app(gated, tok, max_concurrent=1, max_queue=2, max_new_tokens_cap=20)
    body = {"prompt": PROMPT, "max_new_tokens": 5, "temperature": 0}

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     timeout=30) as c:
            held = [asyncio.create_task(c.post("/v1/generate", json=body)) for _ in range(3)]
            for _ in range(300):  # until the first one is in the model and two are queued
                load = (await c.get("/health")).json()["load"]
                if load == {"active": 1, "waiting": 2} and gated.calls:
                    break
                await asyncio.sleep(0.02)
            assert load == {"active": 1, "waiting": 2}
            refused = await c.post("/v1/generate", json=body)
            gated.gate.set()
            done = await asyncio.wait_for(asyncio.gather(*held), timeout=30)
            after = await c.post("/v1/generate", json=body)
            health = (await c.get("/health")).json()
        return refused, done, after, health

    try:
        refused, done, after, health = asyncio.run(scenario())
    finally:
        gated.gate.set()
    assert refused.status_code == 503 and "busy" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1
    texts = {r.json()["text"] for r in done}
    assert [r.status_code for r in done] == [200] * 3 and len(texts) == 1
    assert after.status_code == 200 and after.json()["text"] in texts
    assert health["load"] == {"active": 0, "waiting": 0}


# ---------------------------------------------------------------------------- bad starts


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tok):
    return save_checkpoint(tmp_path_factory.mktemp("serve") / "tiny", tiny_gpt(tok), tok)


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_missing_checkpoint(tmp_path, capsys):
    code, _, err = run_cli(capsys, "serve", "--ckpt", tmp_path / "nope")
    assert code == 1 and "does not exist" in err and "gptlab train" in err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    code, _, err = run_cli(capsys, "serve", "--ckpt", tmp_path / "half")
    assert code == 1 and "lacks model.safetensors, tokenizer.json" in err


def test_cli_corrupt_checkpoint(tmp_path, ckpt, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ckpt.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    code, _, err = run_cli(capsys, "serve", "--ckpt", bad, "--port", 0)
    assert code == 1 and "cannot load the checkpoint" in err and "Traceback" not in err
    (bad / "model.safetensors").write_bytes((ckpt / "model.safetensors").read_bytes())
    (bad / "config.json").write_text('{"format": "gptlab", "format_ver')
    code, _, err = run_cli(capsys, "serve", "--ckpt", bad, "--port", 0)
    assert code == 1 and "cannot load the checkpoint" in err and "config.json" in err


def test_cli_port_in_use(ckpt, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out, err = run_cli(capsys, "serve", "--ckpt", ckpt, "--port", port)
    assert code == 1 and f"port {port} on 127.0.0.1 is already in use" in err
    assert "--port 0" in err and "listening on" not in out


@pytest.mark.parametrize("flag, value, message", [
    ("--max-queue", -1, "max_queue must be an integer >= 0"),
    ("--max-concurrent", 0, "max_concurrent must be an integer >= 1"),
    ("--max-new-tokens-cap", 0, "max_new_tokens_cap"),
    ("--port", 70000, "--port must be in 0..65535"),
])
def test_cli_invalid_limits(ckpt, capsys, flag, value, message):
    code, _, err = run_cli(capsys, "serve", "--ckpt", ckpt, flag, value)
    assert code == 2 and message in err


def test_start_server_checks_before_starting(tmp_path, ckpt):
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        start_server(tmp_path)
    with pytest.raises(ValueError, match="max_queue"):
        start_server(ckpt, max_queue=-2)
    with pytest.raises(TypeError, match="unknown options"):
        start_server(ckpt, max_tokens=5)


def test_the_parser_loads_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys; from gptlab import cli; cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn', 'pydantic') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.stdout.strip() == "[]", out.stderr


def test_generation_does_not_touch_the_global_rng(client):
    state = torch.get_rng_state()
    client.post("/v1/generate", json={"prompt": PROMPT, "max_new_tokens": 5, "seed": 1})
    assert torch.equal(state, torch.get_rng_state())
