"""gptlab serve end to end: a real `gptlab serve` process on 127.0.0.1 (a free port), spoken
to over HTTP with httpx. Every wait has a timeout; the server is stopped at the end."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch
from serve_fixtures import TEXT, save_checkpoint, tiny_gpt

from gptlab.generate import generate
from gptlab.serve import start_server
from gptlab.tokenizers import CharTokenizer

PROMPT = "JULIET:\nO Romeo"
LONG = 100_000  # tokens: a generation that runs until its client goes away
TIMEOUT = httpx.Timeout(60.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread here and in the servers: tiny models on a shared machine run far
    faster without OpenMP threads competing."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tok = CharTokenizer(TEXT)
    model = tiny_gpt(tok)
    ckpt = save_checkpoint(tmp_path_factory.mktemp("serve-e2e") / "tiny", model, tok)
    return ckpt, model, tok


@pytest.fixture(scope="module")
def server(setup):
    ckpt = setup[0]
    with start_server(ckpt, timeout=120, max_concurrent=2, max_queue=8,
                      max_new_tokens_cap=LONG, name="e2e") as srv:
        yield srv
    assert not srv.running


def post(server, **body):
    return httpx.post(f"{server.url}/v1/generate", json=body, timeout=TIMEOUT)


def library_text(setup, prompt, n, **kw):
    _, model, tok = setup
    ids = tok.encode(prompt)
    return tok.decode(generate(model, ids, n, **kw)[len(ids):].tolist())


def load(server):
    return httpx.get(f"{server.url}/health", timeout=TIMEOUT).json()["load"]


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_health_and_url(server):
    assert server.url == f"http://127.0.0.1:{server.port}"
    h = httpx.get(f"{server.url}/health", timeout=TIMEOUT).json()
    assert h["status"] == "ok" and h["model"]["name"] == "e2e"
    assert h["limits"]["max_concurrent"] == 2 and h["limits"]["max_queue"] == 8
    assert "text/html" in httpx.get(server.url + "/", timeout=TIMEOUT).headers["content-type"]
    assert "listening on " + server.url in server.log()


def test_generate_greedy_and_stream_agree(server, setup):
    body = {"prompt": PROMPT, "max_new_tokens": 40, "temperature": 0}
    out = post(server, **body).json()
    assert out["text"] == library_text(setup, PROMPT, 40, temperature=0)
    assert out["completion_tokens"] == 40 and out["finish_reason"] == "length"
    events, chunks = [], 0
    with httpx.stream("POST", f"{server.url}/v1/generate", json={**body, "stream": True},
                      timeout=TIMEOUT) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            chunks += 1
    assert len(events) == 41 and events[-1]["done"] is True
    assert "".join(e["token"] for e in events[:-1]) == out["text"]
    assert events[-1]["completion_tokens"] == 40 and events[-1]["finish_reason"] == "length"


def test_tokens_arrive_while_generating_and_a_client_that_leaves_stops_it(server):
    """The first events come while the generation is still running (it would take minutes),
    /health answers meanwhile, and closing the connection ends the generation."""
    with httpx.stream("POST", f"{server.url}/v1/generate", timeout=TIMEOUT,
                      json={"prompt": PROMPT, "max_new_tokens": LONG, "stream": True}) as r:
        lines = r.iter_lines()
        got = [json.loads(line[6:]) for line, _ in zip(lines, range(10))
               if line.startswith("data: ")]
        assert len(got) >= 3 and all("token" in e for e in got)
        assert load(server)["active"] >= 1  # still generating: these came one by one
    wait_for(lambda: load(server) == {"active": 0, "waiting": 0}, what="generation to stop")
    wait_for(lambda: '"finish_reason": "cancelled"' in server.log(), what="the access log")
    line = next(json.loads(x) for x in server.log().splitlines()
                if '"finish_reason": "cancelled"' in x)
    assert line["status"] == 200 and 3 <= line["completion_tokens"] < LONG


def test_50_requests_from_8_threads(server, setup):
    greedy = {"prompt": PROMPT, "max_new_tokens": 8, "temperature": 0}
    sampled = {"prompt": PROMPT, "max_new_tokens": 8, "temperature": 1.0, "top_k": 20}
    expect_greedy = library_text(setup, PROMPT, 8, temperature=0)
    expect = {seed: post(server, **sampled, seed=seed).json()["text"] for seed in range(3)}
    for seed, text in expect.items():
        assert text == library_text(setup, PROMPT, 8, temperature=1.0, top_k=20, seed=seed)

    local = threading.local()  # one client (one connection) per thread
    clients = []

    def one(i):
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=TIMEOUT)
            clients.append(local.client)
        body = greedy if i % 2 else {**sampled, "seed": i % 3}
        r = local.client.post(f"{server.url}/v1/generate", json=body)
        return i, r.status_code, r.json().get("text")

    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(50), timeout=240))
    finally:
        for c in clients:
            c.close()
    assert len(results) == 50
    for i, status, text in results:
        assert status == 200
        assert text == (expect_greedy if i % 2 else expect[i % 3]), i


def test_overload_gets_503_and_the_server_goes_on(server):
    """Two endless streams fill both slots; of 12 more requests 8 wait in the queue and 4 are
    refused at once with 503 + Retry-After. When the streams are closed the 8 complete."""
    body = {"prompt": PROMPT, "max_new_tokens": 5, "temperature": 0}
    streams, readers = [], []  # (an iterator dropped early would close its connection)
    try:
        for _ in range(2):
            cm = httpx.stream("POST", f"{server.url}/v1/generate", timeout=TIMEOUT,
                              json={"prompt": PROMPT, "max_new_tokens": LONG, "stream": True})
            r = cm.__enter__()
            streams.append(cm)
            assert r.status_code == 200
            readers.append(r.iter_lines())
            next(readers[-1])  # generating now
        assert load(server)["active"] == 2

        results: list[httpx.Response] = []
        lock = threading.Lock()

        def one():
            r = post(server, **body)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=one, daemon=True) for _ in range(12)]
        for t in threads:
            t.start()
        wait_for(lambda: len(results) >= 4 and load(server)["waiting"] == 8,
                 what="4 refusals and 8 waiting")
        with lock:
            refused = list(results)
        assert len(refused) == 4
        assert all(r.status_code == 503 and "busy" in r.json()["error"] for r in refused)
        assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    finally:
        for cm in streams:
            cm.__exit__(None, None, None)
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 12
    assert sorted(r.status_code for r in results) == [200] * 8 + [503] * 4
    assert len({r.json()["text"] for r in results if r.status_code == 200}) == 1
    wait_for(lambda: load(server) == {"active": 0, "waiting": 0}, what="an idle server")
    assert post(server, **body).status_code == 200


def test_bad_requests_do_not_hurt_the_server(server):
    r = httpx.post(f"{server.url}/v1/generate", content=b'{"prompt": ', timeout=TIMEOUT,
                   headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
    r = post(server, prompt="R", temperature="hot")
    assert r.status_code == 422 and "temperature" in r.json()["error"]
    r = post(server, prompt="R", max_new_tokens=LONG + 1)
    assert r.status_code == 422 and "cap" in r.json()["error"]
    assert post(server, prompt="R", max_new_tokens=3).status_code == 200
    deadline = time.monotonic() + 10  # the access-log line is written after the response
    while True:
        log = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
        if (log and log[-1]["status"] == 200) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert {"method", "path", "status", "prompt_tokens", "completion_tokens", "elapsed_s",
            "client"} <= set(log[-1])
    assert [x["status"] for x in log[-4:]] == [422, 422, 422, 200]


def test_command_fails_clearly_on_a_missing_checkpoint(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gptlab.cli", "serve", "--ckpt",
                          str(tmp_path / "missing")], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 1 and "does not exist" in out.stderr
    assert "Traceback" not in out.stderr


def test_start_server_reports_a_port_in_use(server, setup):
    with pytest.raises(RuntimeError, match=f"(?s)exited with status 1.*port {server.port} "
                                           "on 127.0.0.1 is already in use"):
        start_server(setup[0], port=server.port, timeout=120)
    assert post(server, prompt="R", max_new_tokens=2).status_code == 200
