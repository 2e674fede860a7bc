"""Lesson 12 checkers: each passes the reference, explains and raises on a wrong answer, and
says "not done yet" for a stub."""

from __future__ import annotations

import json

import pytest

from gptlab.chat import chat_prompt, parse_sse
from gptlab.checks.deployment import check_chat_prompt, check_parse_sse


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 12.0: stub")


def expect_failure(capsys, checker, fn, *words):
    """``checker(fn)`` raises an AssertionError whose message (and the printed text) contains
    every word."""
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 12.")
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


# ----------------------------------------------------------------------------- 12.1


def plain_chat_prompt(history, user="ROMEO", bot="JULIET", max_tokens=None, count_tokens=len):
    """The learner's likely solution: a list of turns, popped from the front."""
    turns = [f"{user if role == 'user' else bot}:\n{text}\n\n" for role, text in history]
    cue = f"{bot}:\n"
    while max_tokens is not None and len(turns) > 1 and \
            count_tokens("".join(turns) + cue) > max_tokens:
        turns.pop(0)
    return "".join(turns) + cue


def test_chat_prompt_passes_references(capsys):
    assert check_chat_prompt(chat_prompt)
    assert check_chat_prompt(plain_chat_prompt)
    assert capsys.readouterr().out.count("✅ Exercise 12.1 passed") == 2


def test_chat_prompt_stub(capsys):
    assert not check_chat_prompt(stub)
    assert "not done yet" in capsys.readouterr().out


def test_chat_prompt_format_mistakes(capsys):
    expect_failure(capsys, check_chat_prompt,
                   lambda h, user="ROMEO", bot="JULIET", **kw: plain_chat_prompt(h, user, bot)[:-1],
                   "must end with the cue")
    expect_failure(capsys, check_chat_prompt,
                   lambda h, user="ROMEO", bot="JULIET", **kw: "".join(
                       f"{user if r == 'user' else bot}:\n{t}\n" for r, t in h) + f"{bot}:\n",
                   "a blank line")
    expect_failure(capsys, check_chat_prompt,  # the roles swapped
                   lambda h, user="ROMEO", bot="JULIET", **kw: plain_chat_prompt(
                       [("bot" if r == "user" else "user", t) for r, t in h], user, bot),
                   "expected")


def test_chat_prompt_cropping_mistakes(capsys):
    def drops_newest(h, user="ROMEO", bot="JULIET", max_tokens=None, count_tokens=len):
        h = list(h)
        while max_tokens is not None and h and \
                count_tokens(plain_chat_prompt(h, user, bot)) > max_tokens:
            h.pop()
        return plain_chat_prompt(h, user, bot)

    def cuts_characters(h, user="ROMEO", bot="JULIET", max_tokens=None, count_tokens=len):
        text = plain_chat_prompt(h, user, bot)
        return text if max_tokens is None else text[-max_tokens:]

    def uses_len(h, user="ROMEO", bot="JULIET", max_tokens=None, count_tokens=len):
        return plain_chat_prompt(h, user, bot, max_tokens)

    def off_by_one_turn(h, user="ROMEO", bot="JULIET", max_tokens=None, count_tokens=len):
        right = plain_chat_prompt(h, user, bot, max_tokens, count_tokens)
        kept = next((i for i in range(len(h)) if plain_chat_prompt(h[i:], user, bot) == right),
                    0)
        if 0 < kept < len(h) - 1:  # it cropped: one turn too many dropped
            return plain_chat_prompt(h[kept + 1:], user, bot)
        return right

    def forgets_cue(h, user="ROMEO", bot="JULIET", max_tokens=None, count_tokens=len):
        turns = [f"{user if r == 'user' else bot}:\n{t}\n\n" for r, t in h]
        while max_tokens is not None and len(turns) > 1 and \
                count_tokens("".join(turns)) > max_tokens:
            turns.pop(0)
        return "".join(turns) + f"{bot}:\n"

    expect_failure(capsys, check_chat_prompt, drops_newest, "keep the newest turns")
    expect_failure(capsys, check_chat_prompt, cuts_characters, "drop whole turns")
    expect_failure(capsys, check_chat_prompt, uses_len, "count_tokens(prompt)")
    expect_failure(capsys, check_chat_prompt, off_by_one_turn, "cropped too much")
    expect_failure(capsys, check_chat_prompt, forgets_cue, "over max_tokens", "cue")


def test_chat_prompt_must_not_change_history(capsys):
    def pops(h, user="ROMEO", bot="JULIET", max_tokens=None, count_tokens=len):
        out = plain_chat_prompt(h, user, bot, max_tokens, count_tokens)
        if h:
            h.pop(0)
        return out

    # the checker passes a copy, so a learner's edit cannot spoil the next case...
    assert check_chat_prompt(pops)
    capsys.readouterr()


def test_chat_prompt_learner_error(capsys):
    def broken(h, **kw):
        return h[5][1] + "!"

    with pytest.raises(IndexError):
        check_chat_prompt(broken)
    assert "your code raised IndexError" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 12.2


def plain_parse_sse(lines):
    tokens = []
    for line in lines:
        if not line.startswith("data:"):
            continue
        event = json.loads(line[len("data:"):])
        if "error" in event:
            raise RuntimeError(event["error"])
        if event.get("done"):
            return tokens, event
        tokens.append(event["token"])
    return tokens, None


def test_parse_sse_passes_references(capsys):
    assert check_parse_sse(parse_sse)
    assert check_parse_sse(plain_parse_sse)
    assert capsys.readouterr().out.count("✅ Exercise 12.2 passed") == 2


def test_parse_sse_stub(capsys):
    assert not check_parse_sse(stub)
    assert "not done yet" in capsys.readouterr().out


def test_parse_sse_mistakes(capsys):
    def raw_json(lines):
        tokens, done = plain_parse_sse(list(lines))
        return [json.dumps({"token": t}) for t in tokens], done

    def drops_empty(lines):
        tokens, done = plain_parse_sse(lines)
        return [t for t in tokens if t], done

    def not_a_pair(lines):
        return plain_parse_sse(lines)[0]

    def done_always_dict(lines):
        tokens, done = plain_parse_sse(lines)
        return tokens, done or {}

    def ignores_errors(lines):
        return plain_parse_sse(line for line in lines if "error" not in line)

    def strips_done(lines):
        tokens, done = plain_parse_sse(lines)
        return tokens, done and {k: v for k, v in done.items() if k != "done"}

    expect_failure(capsys, check_parse_sse, raw_json, "json.loads")
    expect_failure(capsys, check_parse_sse, drops_empty, "keep empty pieces")
    expect_failure(capsys, check_parse_sse, not_a_pair, "pair (tokens, summary)")
    expect_failure(capsys, check_parse_sse, done_always_dict, "should be None")
    expect_failure(capsys, check_parse_sse, ignores_errors, "RuntimeError")
    expect_failure(capsys, check_parse_sse, strips_done, "the summary")


def test_parse_sse_reads_lines_once(capsys):
    def two_passes(lines):  # works on a list, not on a one-pass iterator
        tokens = [json.loads(x[5:])["token"] for x in lines if '"token"' in x]
        done = [json.loads(x[5:]) for x in lines if '"done"' in x]
        return tokens, done[0] if done else None

    with pytest.raises(AssertionError):
        check_parse_sse(two_passes)
    capsys.readouterr()
