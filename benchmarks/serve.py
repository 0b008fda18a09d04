"""Serving throughput and latency: gunicorn with batching on and off, and a hello-world ceiling.

Starts each server on this machine and drives it with ``wrk`` (closed loop: a fixed number of
connections, each sending its next request when the last answer arrives) at several
concurrencies, and prints requests/s, p50/p90/p99 latency, errors (socket errors, timeouts of
10 s, and answers of status 400 or more, as wrk counts them) and the RSS of every worker with
both models loaded. The req/s count the answers below status 400 only: a server that fails its
requests fast is not a fast server. A row no request of which was answered (every connection
closed or reset) has no latency, shown as n/a, and misses every target; one no request of which
was answered below status 400 shows the latency of its failures, and misses the latency targets
too (in a row some rounds of which answered below status 400, the latency is theirs). In one run, so that
every ratio is between figures measured under the same conditions: every server is up at once,
and each row (route and concurrency) is measured ``--rounds`` times, the servers taking turns
within a round (in reverse order every other round). A row shows the median of its rounds; a
ratio is the median of the rounds' own ratios, with the lowest and highest beside it, so that a
change of the machine's load during the run shows as a range instead of moving one server's
figures only:

* ``legacy-assistant serve`` (gunicorn, the same workers and threads) twice, with
  ``LEGACY_ASSISTANT_BATCHING=on`` and ``=off``, side by side with the ratio on/off;
* the Flask hello-world app (``benchmarks/hello_app.py``) under the same gunicorn settings: the
  ceiling of the web stack with no model;
* with ``--dev``, Flask's development server (one process) as well.

Routes (``--routes``):

* ``parse``: ``POST /api/v1/parse``, sentences of data/intents.json's patterns and variations;
* ``chat``: ``POST /api/v1/chat`` with the same sentences, each checked beforehand to get an
  intent's reply (``generated`` false);
* ``cakechat``: ``POST /cakechat_api/v1/actions/get_response`` with greedy decoding, small-talk
  contexts of one to three turns (data/responder_contexts.json, made-up ones, and those of
  ``--contexts``) under every emotion the responder knows;
* ``chat-generated``: ``POST /api/v1/chat`` with small-talk messages that no intent takes, each
  checked beforehand to get a generated reply, so that the load measures generation (decoded
  with the server's generation mode unless ``--generation-mode`` says).

Every request picks its body at random from a few hundred, and each chat a sender from a pool
(``--senders``); a chat answer of the other kind (generated where an intent's reply was
expected, or the reverse, as a conversation's follow-up may turn it) is counted and shown beside
the errors.

    apt-get install wrk                       # the load generator (Debian package)
    python benchmarks/serve.py [--duration 5] [--rounds 3] [--workers 2] [--threads 4] [--concurrency 1 8 16]
        [--routes parse chat cakechat chat-generated] [--contexts FILE] [--markdown] [--quick] [--dev]
        [--port FIRST]

``--contexts`` reads more small-talk contexts: a JSON list of contexts (lists of turns) or of
sentences, a Topical-Chat JSON file (conversations with ``content`` messages), or a text file
with one context a line, turns separated by `` | ``.

The servers listen on 127.0.0.1, one port each (three, four with ``--dev``): ``--port FIRST``
and the ports after it, each checked free first, or free ports the system picks.

The load generator runs on the same cores as the server, so the figures are a floor for the
server alone. Targets (printed, not enforced) are checked at 16 connections.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this script
from timing import once, open_local, port_number, positive_float, positive_int, run_main, server_ports  # noqa: E402

PYTHON = sys.executable
INTENTS = ROOT / "data" / "intents.json"
RESPONDER_CONTEXTS = ROOT / "data" / "responder_contexts.json"
GENERATION_MODE_ENV = "LEGACY_ASSISTANT_GENERATION_MODE"
FALLBACK_TAG = "fallback"  # the intents file's out-of-scope examples: not in-scope sentences

# Each wrk thread reads the bodies (one JSON document a line) and sends one picked at random;
# "{sender}" in a body becomes one of BENCH_SENDERS senders. With BENCH_EXPECT ("true" or
# "false") every 200 answer whose "generated" is not that is counted.
LUA = r"""
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local senders = tonumber(os.getenv("BENCH_SENDERS") or "100")
local prefix = os.getenv("BENCH_PREFIX") or "bench"
local expect = os.getenv("BENCH_EXPECT") or ""
local threads = {}
local count = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

setup = function(thread)
  count = count + 1
  thread:set("id", count)
  table.insert(threads, thread)
end

init = function(args)
  math.randomseed(7919 * (id or 0) + os.time())
  mismatch = 0
end

request = function()
  local body = bodies[math.random(#bodies)]
  local sender = prefix .. "-" .. tostring(math.random(senders))
  body = string.gsub(body, "{sender}", sender)
  return wrk.format(nil, nil, nil, body)
end

if expect ~= "" then
  response = function(status, headers, body)
    if status == 200 and not string.find(body, '"generated"%s*:%s*' .. expect) then
      mismatch = mismatch + 1
    end
  end
end

done = function(summary, latency, requests)
  local m = 0
  for _, thread in ipairs(threads) do m = m + (thread:get("mismatch") or 0) end
  local e = summary.errors
  io.write(string.format(
    "RESULT {\"requests\": %d, \"seconds\": %f, \"p50\": %f, \"p90\": %f, \"p99\": %f, "
    .. "\"errors\": %d, \"non2xx\": %d, \"mismatch\": %d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout, e.status, m))
end
"""

# Made-up small talk: every filling of every template, so the messages differ in their words.
SMALL_TALK = (
    "I just got back from {place}.",
    "Have you ever been to {place}?",
    "My {person} is coming to visit {when}.",
    "I can't decide whether to {activity} {when}.",
    "What do you think about {topic}?",
    "I watched a documentary about {topic} {past}.",
    "My {person} thinks {topic} is overrated.",
    "I am so tired of {chore}.",
    "I finally finished {chore} {past}.",
    "Did you hear the news about {topic}?",
    "I dreamt about {topic} {past}.",
    "I'm learning to {activity}.",
    "My {person} and I argued about {topic} {past}.",
    "I lost my {thing} {past}.",
    "I found a {thing} on the train {past}.",
    "Why is {topic} so popular?",
    "My {person} wants me to {activity} with them {when}.",
    "I miss {place} so much.",
)
FILLINGS = {
    "place": ("Lisbon", "the mountains", "my grandmother's farm", "a music festival", "Japan", "the seaside"),
    "person": ("sister", "neighbour", "best friend", "boss", "cousin", "dad", "roommate"),
    "when": ("next week", "this weekend", "tomorrow", "in the summer"),
    "past": ("last night", "yesterday", "last week", "this morning"),
    "topic": (
        "football",
        "jazz",
        "space travel",
        "video games",
        "gardening",
        "old movies",
        "dinosaurs",
        "chess",
        "the ocean",
        "rock climbing",
        "science fiction",
    ),
    "activity": ("play the guitar", "swim", "paint", "speak Spanish", "knit", "run a marathon", "ski"),
    "chore": ("doing laundry", "cleaning the kitchen", "paying bills", "studying for exams", "fixing my bike"),
    "thing": ("umbrella", "phone", "wallet", "old photo", "library book", "scarf"),
}
# The other side's turns of made-up contexts.
ANSWERS = (
    "Really? Tell me more.",
    "That sounds great.",
    "Oh no, I'm sorry to hear that.",
    "I have never tried that.",
    "Me too!",
    "Why do you say that?",
    "That must have been exciting.",
    "I'm not sure what to think about it.",
    "Ha, that is funny.",
    "How did that happen?",
)
PREFIXES = ("", "", "hey, ", "hi, ", "excuse me, ", "quick question: ", "um, ", "so ", "ok ")
SUFFIXES = ("", "", "?", " please", ", thanks", "!", " :)", " today")


def free_port() -> int:
    """A port the system picks as free now (one server; a run's servers take ``server_ports``)."""
    return server_ports(1)[0]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return sorted(found)


def post(port: int, path: str, body: Any, timeout: float = 30) -> tuple[int, Any]:
    """(status, decoded JSON answer) of one POST."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with open_local(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with open_local(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, None


# ---------------------------------------------------------------- texts


def in_scope_texts(count: int, rng: random.Random) -> list[str]:
    """Half of ``count`` from the patterns of data/intents.json (no fallback examples), the other
    half variations of them (a greeting before, punctuation or a word after, lower case)."""
    intents = json.loads(INTENTS.read_text())["intents"]
    patterns = [p for intent in intents if intent["tag"] != FALLBACK_TAG for p in intent["patterns"]]
    texts = list(dict.fromkeys(patterns))
    rng.shuffle(texts)
    texts = texts[: (count + 1) // 2]
    seen = set(texts)
    for _ in range(100 * count):
        if len(texts) >= count:
            break
        pattern = rng.choice(patterns)
        text = rng.choice(PREFIXES) + (pattern.lower() if rng.random() < 0.5 else pattern) + rng.choice(SUFFIXES)
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def made_up_small_talk(rng: random.Random) -> list[str]:
    """Every filling of the small-talk templates, shuffled."""
    lines = []
    for template in SMALL_TALK:
        slots = [name for name in FILLINGS if "{" + name + "}" in template]
        for values in itertools.product(*(FILLINGS[name] for name in slots)):
            lines.append(template.format(**dict(zip(slots, values))))
    rng.shuffle(lines)
    return lines


def _json_contexts(data: object) -> list[list[str]]:
    if isinstance(data, dict):  # Topical-Chat: {id: {"content": [{"message": ...}, ...]}}
        contexts = []
        for conversation in data.values():
            messages = [m["message"].strip() for m in conversation.get("content", [])]
            for end in range(1, len(messages) + 1, 4):
                contexts.append(messages[max(0, end - 3) : end])
        return contexts
    if not isinstance(data, list):
        raise TypeError(f"expected an object or a list, got {type(data).__name__}")
    contexts = [[item] if isinstance(item, str) else list(item) for item in data]
    if not all(isinstance(turn, str) for context in contexts for turn in context):
        raise TypeError("a context holds a turn that is not a string")
    return contexts


def read_contexts(path: Path, limit: int) -> list[list[str]]:
    """Contexts from ``path`` (see the module docstring for the formats), at most ``limit``,
    turns of at most 300 characters."""
    if path.suffix == ".json":
        try:
            contexts = _json_contexts(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not JSON, or not of either shape
            raise SystemExit(
                f"{path}: cannot read contexts ({type(exc).__name__}: {exc}); see the formats in "
                f"{Path(__file__).name}'s docstring"
            ) from None
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SystemExit(f"{path}: cannot read contexts (not UTF-8: {exc})") from None
        contexts = [[turn.strip() for turn in line.split(" | ")] for line in text.splitlines() if line.strip()]
    contexts = [c for c in contexts if c and all(0 < len(turn) <= 300 for turn in c)]
    if not contexts:
        raise SystemExit(f"{path}: no contexts read (see the formats in {Path(__file__).name}'s docstring)")
    return contexts[:limit]


def small_talk(count: int, extra: Path | None, rng: random.Random) -> tuple[list[list[str]], list[str]]:
    """(contexts for the cakechat route, messages for generated chat), ``count`` of each at most:
    data/responder_contexts.json, ``extra``'s contexts, then made-up ones of one to three turns
    until ``count`` or until the made-up lines run out (fewer contexts, never repeated ones)."""
    contexts = [list(c) for c in json.loads(RESPONDER_CONTEXTS.read_text())]
    if extra is not None:
        contexts += read_contexts(extra, count)
    lines = made_up_small_talk(rng)
    messages = list(dict.fromkeys([c[-1] for c in contexts] + lines))[:count]
    made_up = iter(lines)
    while len(contexts) < count:
        turns = rng.choice((1, 1, 2, 3))
        first = next(made_up, None)
        if first is None:  # every made-up line used: --texts asked for more than there are
            break
        context = [first]
        if turns >= 2:
            context.append(rng.choice(ANSWERS))
        if turns == 3 and (last := next(made_up, None)) is not None:
            context.append(last)
        contexts.append(context)
    rng.shuffle(contexts)
    return contexts[:count], messages


# ---------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    expect: str  # what a chat answer's "generated" must be ("true"/"false"), "" for no check
    needs_responder: bool = False


ROUTES = {
    "parse": Route("parse", "/api/v1/parse", ""),
    "chat": Route("chat", "/api/v1/chat", "false"),
    "cakechat": Route("cakechat", "/cakechat_api/v1/actions/get_response", "", needs_responder=True),
    "chat-generated": Route("chat-generated", "/api/v1/chat", "true", needs_responder=True),
}
HELLO = Route("hello", "/hello", "")


def bodies_for(route: str, texts: Sequence[Any], emotions: Sequence[str], rng: random.Random) -> list[dict]:
    if route in ("parse", "hello"):
        return [{"text": text} for text in texts]
    if route == "chat":
        return [{"sender": "{sender}", "message": text} for text in texts]
    if route == "cakechat":
        return [{"context": context, "emotion": rng.choice(emotions), "mode": "greedy"} for context in texts]
    # generated chat: half the turns name an emotion, half take the default
    return [
        {"sender": "{sender}", "message": text, **({"emotion": rng.choice(emotions)} if rng.random() < 0.5 else {})}
        for text in texts
    ]


def keep_of_kind(port: int, messages: Sequence[str], generated: bool, label: str) -> list[str]:
    """The messages whose chat answer (one request each, a fresh sender each) has ``generated``
    as asked: an intent's reply for in-scope chat, a generated one for generated chat."""

    def check(item: tuple[int, str]) -> bool:
        index, message = item
        status, answer = post(port, "/api/v1/chat", {"sender": f"probe-{label}-{index}", "message": message}, 60)
        if status != 200:
            raise SystemExit(f"probe of /api/v1/chat answered {status}: {answer}")
        return bool(answer.get("generated")) == generated

    with ThreadPoolExecutor(4) as pool:
        keep = list(pool.map(check, enumerate(messages)))
    kept = [message for message, ok in zip(messages, keep) if ok]
    print(
        f"  {label}: {len(kept)} of {len(messages)} messages answered with generated={str(generated).lower()}",
        file=sys.stderr,
        flush=True,
    )
    if len(kept) < 10:
        raise SystemExit(f"{label}: only {len(kept)} messages of the expected kind; too few to measure")
    return kept


def prepare_bodies(
    port: int,
    routes: Sequence[Route],
    in_scope: Sequence[str],
    contexts: Sequence[list[str]],
    small_talk_messages: Sequence[str],
    emotions: Sequence[str],
    work: Path,
    rng: random.Random,
) -> tuple[dict[str, Path], dict[str, int]]:
    """Each route's bodies file (one JSON body a line) and its number of bodies, the chat
    messages checked against the server on ``port`` and one cakechat body sent."""
    names = [route.name for route in routes]
    texts: dict[str, Sequence[Any]] = {
        "parse": in_scope,
        "chat": keep_of_kind(port, in_scope, False, "chat") if "chat" in names else [],
        "cakechat": contexts,
        "chat-generated": keep_of_kind(port, small_talk_messages, True, "chat-generated")
        if "chat-generated" in names
        else [],
    }
    bodies, counts = {}, {}
    for name in names:
        rows = bodies_for(name, texts[name], emotions, rng)
        bodies[name] = work / f"{name}.jsonl"
        bodies[name].write_text("".join(json.dumps(row) + "\n" for row in rows))
        counts[name] = len(rows)
        if name == "cakechat":
            status, answer = post(port, ROUTES[name].path, rows[0])
            if status != 200:
                raise SystemExit(f"the cakechat route answered {status}: {answer}")
    return bodies, counts


# ---------------------------------------------------------------- servers and load


class Server:
    """One server process (its own session, so that stopping it stops its workers)."""

    def __init__(self, name: str, command: list[str], port: int, log: Path, env: dict[str, str]) -> None:
        self.name, self.port, self.log_path = name, port, log
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env},
        )

    def wait_ready(self, hello: bool, workers: int, timeout: float = 300) -> None:
        """Wait until every worker serves: ``/ready`` of the assistant's server; for the hello
        app, an answer and ``workers`` worker processes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited early with status {self.process.returncode}{self.log_tail()}")
            try:
                if hello:
                    if (
                        post(self.port, "/hello", {"text": "hi"}, 2)[0] == 200
                        and len(children(self.process.pid)) >= workers
                    ):
                        time.sleep(1)  # the last worker forked may still be importing Flask
                        return
                elif get(self.port, "/ready")[0] == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.name} not ready after {timeout:g} s{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, for an error message. Quoted rather than pointed to: the
        log lies in the run's temporary folder, which is removed when the run ends, failed or not."""
        self.log.flush()
        try:
            said = self.log_path.read_text(errors="replace").rstrip().splitlines()[-lines:]
        except OSError:
            return ""
        return "; the end of its log:\n" + "\n".join(said) if said else "; its log is empty"

    def workers_rss(self) -> list[float]:
        """RSS of each worker (of the one process for a server without workers), MiB."""
        pids = children(self.process.pid) or [self.process.pid]
        return [rss_mib(pid) for pid in pids]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@contextmanager
def serving(name: str, command: list[str], port: int, log: Path, env: dict[str, str]) -> Iterator[Server]:
    server = Server(name, command, port, log, env)
    try:
        yield server
    finally:
        server.stop()


def wrk_seconds(duration: float) -> int:
    """The seconds ``wrk`` runs for a ``--duration``: its ``-d`` takes whole seconds, at least 1."""
    return max(1, round(duration))


def wrk(port: int, route: Route, connections: int, seconds: float, script: Path, bodies: Path, env: dict) -> dict:
    threads = max(1, min(2, connections))
    run = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{wrk_seconds(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{route.path}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_BODIES": str(bodies), "BENCH_EXPECT": route.expect, **env},
    )
    if run.returncode != 0:
        raise SystemExit(f"wrk failed ({run.returncode}): {run.stdout}{run.stderr}")
    line = next((row for row in run.stdout.splitlines() if row.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result: {run.stdout}{run.stderr}")
    return wrk_result(json.loads(line[len("RESULT ") :]))


def wrk_result(printed: dict) -> dict:
    """The figures of a cell from what the Lua script's ``done`` printed: ``rps`` counts the
    answers of status below 400 only (``requests`` holds every answer, those of status 400 or more
    too, which ``non2xx`` counts), and a cell with no answer at all has no latency (NaN): wrk's
    percentiles of its empty histogram are 0, which read as a p99 of 0 ms met every target."""
    result = dict(printed)
    result["rps"] = (result["requests"] - result["non2xx"]) / result["seconds"]
    if not result["requests"]:
        result.update(p50=math.nan, p90=math.nan, p99=math.nan)
    return result


def warm_up(
    port: int, routes: Sequence[Route], script: Path, bodies: dict[str, Path], senders: int, server: str
) -> None:
    """One second of load on each route, so that the first measured round starts warm."""
    for route in routes:
        env = {"BENCH_SENDERS": str(senders), "BENCH_PREFIX": f"{route.name}-{server}"}
        wrk(port, route, 8, 1.0, script, bodies[route.name], env)


def measure_cell(
    server: str, port: int, route: Route, connections: int, seconds: float, script: Path, bodies: Path, senders: int
) -> dict:
    env = {"BENCH_SENDERS": str(senders), "BENCH_PREFIX": f"{route.name}-{server}"}
    result = wrk(port, route, connections, seconds, script, bodies, env)
    print(
        f"  {server:6} {route.name:15} c={connections:<3} {result['rps']:8.1f} req/s  "
        f"p99 {milliseconds(result['p99']):>7} ms  errors {result['errors'] + result['non2xx']}",
        file=sys.stderr,
        flush=True,
    )
    return result


def milliseconds(value: float) -> str:
    """A latency figure for the tables: n/a where no request was answered."""
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def median_of_answered(values: list[float]) -> float:
    """The median of the rounds that have the figure (a round no request of which was answered
    has no latency); NaN where none has it."""
    known = [value for value in values if not math.isnan(value)]
    return statistics.median(known) if known else math.nan


def combine(rounds: list[dict]) -> dict:
    """One row from a cell's rounds: the median of each figure, errors summed. The latencies are
    those of the rounds that answered below status 400 where one did: a round that failed every
    request fast (503s in a few ms) would pull the row's latency down; a row none of whose rounds
    did shows the latency of its failures (:func:`latency_target` says so)."""
    answered = [r for r in rounds if r["rps"] > 0] or rounds
    row: dict[str, Any] = {"rps": median_of_answered([r["rps"] for r in rounds])}
    row.update({key: median_of_answered([r[key] for r in answered]) for key in ("p50", "p90", "p99")})
    row.update({key: sum(r[key] for r in rounds) for key in ("errors", "non2xx", "mismatch")})
    row["rounds"] = rounds
    return row


def ratio_of_rounds(a: dict, b: dict) -> tuple[float, float, float]:
    """(median, lowest, highest) of a's req/s over b's, round by round (the same round's pair
    ran back to back, so a change of machine load hits both alike)."""
    ratios = [x["rps"] / y["rps"] for x, y in zip(a["rounds"], b["rounds"]) if y["rps"]]
    if not ratios:  # b answered nothing in any round: every request failed or timed out
        return math.nan, math.nan, math.nan
    return statistics.median(ratios), min(ratios), max(ratios)


def ratio_text(ratio: tuple[float, float, float]) -> str:
    middle, low, high = ratio
    return "n/a" if math.isnan(middle) else f"{middle:.2f}x ({low:.2f}-{high:.2f})"


# ---------------------------------------------------------------- report


def errors_cell(result: dict, route: Route) -> str:
    text = str(result["errors"] + result["non2xx"])
    if result.get("mismatch"):
        other = "canned" if route.expect == "true" else "generated"
        text += f" (+{result['mismatch']} {other})"
    return text


def figures(result: dict | None, route: Route) -> list[str]:
    if result is None:
        return ["-"] * 5
    return [
        f"{result['rps']:.1f}",
        milliseconds(result["p50"]),
        milliseconds(result["p90"]),
        milliseconds(result["p99"]),
        errors_cell(result, route),
    ]


def table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return "\n".join(
        "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def latency_target(result: dict, limit_ms: float) -> str:
    """A row's p99 against ``limit_ms``, and whether that meets it: a row no request of which was
    answered below status 400 misses it, however fast its failures came (the latencies wrk
    measures are those of every answer, a 503's too)."""
    answered = result["rps"] > 0
    failures_only = not answered and not math.isnan(result["p99"])
    shown = milliseconds(result["p99"]) + " ms" + (" (no answer below status 400)" if failures_only else "")
    return f"{shown} -> {verdict(answered and result['p99'] <= limit_ms)}"


def report(
    args: argparse.Namespace,
    routes: Sequence[Route],
    results: dict,
    memory: dict[str, list[float]],
    counts: dict[str, int],
) -> None:
    # the servers inherit this environment: a mode set in it is theirs, not the server's default
    inherited = os.environ.get(GENERATION_MODE_ENV, "").strip()
    mode = args.generation_mode or (f"{inherited} ({GENERATION_MODE_ENV})" if inherited else "the server's default")
    print(
        f"\nmachine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; load generator (wrk) on the same machine;"
        f" gunicorn: {args.workers} workers x {args.threads} threads (gthread);"
        # the seconds each row ran, not those asked for (--duration 0.5 ran 1 s and said 0.5)
        f" {args.rounds} round(s) of {wrk_seconds(args.duration)} s per row, the servers taking turns (medians shown);"
        f" bodies: " + ", ".join(f"{name} {n}" for name, n in counts.items()) + f"; {args.senders} senders a route;"
        f" cakechat decoded greedy, generated chat with {mode}\n"
    )
    figures_header = ["req/s", "p50 ms", "p90 ms", "p99 ms", "errors"]
    header = ["route", "connections"]
    header += [f"on {h}" for h in figures_header] + [f"off {h}" for h in figures_header]
    header += ["req/s on/off (range)"]
    rows = []
    for route in routes:
        for connections in args.concurrency:
            on, off = results.get(("on", route.name, connections)), results.get(("off", route.name, connections))
            ratio = ratio_text(ratio_of_rounds(on, off)) if on and off else "-"
            rows.append([route.name, str(connections), *figures(on, route), *figures(off, route), ratio])
    print("batching on and off (LEGACY_ASSISTANT_BATCHING):")
    print(table(header, rows, args.markdown))

    others = [("hello", HELLO)] + ([("dev", route) for route in routes] if args.dev else [])
    rows = [
        [f"{server} {route.name}" if server == "dev" else "hello world", str(c), *figures(results[key], route)]
        for server, route in others
        for c in args.concurrency
        if (key := (server, route.name, c)) in results
    ]
    if rows:
        print("\nhello world (same gunicorn settings, no model)" + (" and the dev server" if args.dev else "") + ":")
        print(table(["server", "connections", *figures_header], rows, args.markdown))

    print("\nworker RSS after the load, both models loaded (MiB):")
    for server, values in memory.items():
        print(f"  {server:6} " + ", ".join(f"{mib:.0f}" for mib in values))

    print(
        "\ntargets at 16 connections (printed, not enforced; a ratio is the median of the rounds' ratios, "
        "lowest-highest in brackets):"
    )
    if 16 not in args.concurrency:  # said, rather than a heading followed by the memory target alone
        print("  no row at 16 connections (--concurrency): the throughput and latency targets are not checked")
    parse, hello = results.get(("on", "parse", 16)), results.get(("hello", "hello", 16))
    if parse:
        if hello:
            share = ratio_of_rounds(parse, hello)
            print(
                f"  parse, batching on: >= 0.45x hello world: {ratio_text(share)} "
                f"({parse['rps']:.0f} / {hello['rps']:.0f} req/s) -> {verdict(share[0] >= 0.45)}"
            )
        print(f"  parse, batching on: p99 <= 30 ms: {latency_target(parse, 30)}")
        errors = parse["errors"] + parse["non2xx"]
        print(f"  parse, batching on: zero errors: {errors} -> {verdict(errors == 0)}")
    on, off = results.get(("on", "cakechat", 16)), results.get(("off", "cakechat", 16))
    if on and off:
        batched = ratio_of_rounds(on, off)
        print(
            f"  cakechat greedy: batching on >= 3x off: {ratio_text(batched)} "
            f"({on['rps']:.1f} / {off['rps']:.1f} req/s) -> {verdict(batched[0] >= 3)}"
        )
    if on:
        print(f"  cakechat greedy, batching on: p99 <= 150 ms: {latency_target(on, 150)}")
    rss = [mib for server in ("on", "off") for mib in memory.get(server, [])]
    if rss:
        print(f"  worker RSS <= 750 MiB: max {max(rss):.0f} MiB -> {verdict(max(rss) <= 750)}")


# ---------------------------------------------------------------- main


def callers_store(url: str | None) -> str | None:
    """``--store`` as the servers, which run in the checkout, must be given it: a relative SQLite
    path (``sqlite:bench.db``) is the caller's, made absolute here (it was made in the checkout)."""
    if url is None or not url.startswith("sqlite:"):
        return url
    path, mark, query = url[len("sqlite:") :].partition("?")
    if not path or path.startswith(("/", "~")) or path == ":memory:":  # absolute, home, or refused by serve
        return url
    return f"sqlite://{Path(path).absolute()}{mark}{query}"


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, with ``--quick``'s values filled in where no option gave them, and each
    ``--concurrency`` value once: a value given twice was measured twice in every round, both runs
    pooled into one row's median and that row printed twice; it is now measured once, with a note
    on stderr."""
    parser = argparse.ArgumentParser(description=" ".join((__doc__ or "").split("\n\n")[0].split()))
    parser.add_argument(
        "--duration",
        type=positive_float,
        help="seconds per measurement, rounded to whole ones (default 5; --quick 2)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        help="measurements of each row, the servers taking turns (default 3; --quick 1)",
    )
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--threads", type=positive_int, default=4)
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        nargs="+",
        help="connections, one row each, each value once (default 1 8 16; --quick 1 16)",
    )
    parser.add_argument("--routes", nargs="+", choices=list(ROUTES), default=list(ROUTES))
    parser.add_argument("--texts", type=positive_int, default=300, help="bodies per route to pick from (default 300)")
    parser.add_argument("--senders", type=positive_int, default=200, help="chat senders per route (default 200)")
    parser.add_argument("--contexts", type=Path, help="more small-talk contexts (formats in the docstring)")
    parser.add_argument(
        "--generation-mode",
        choices=["greedy", "beam", "sample", "sample_rerank"],
        help="the servers' generation mode for generated chat (default: the server's default)",
    )
    parser.add_argument(
        "--store",
        help="conversation store URL, shared by every server measured; a relative SQLite path is from the "
        "current folder (default: a fresh SQLite file per server, so that no server waits on another's writes)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        help="the servers listen on this port and the next ones, one each, on 127.0.0.1 "
        "(default: free ports the system picks)",
    )
    parser.add_argument("--dev", action="store_true", help="also measure Flask's development server")
    parser.add_argument("--markdown", action="store_true", help="print the tables in Markdown")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 s a row, one round, 1 and 16 connections, unless --duration, --rounds or --concurrency",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bodies' texts (default 0)")
    args = parser.parse_args(argv)
    # what an option gives is kept with --quick, not replaced without a word (--quick --rounds 3
    # measured one round, --quick --duration 10 two seconds)
    if args.duration is None:
        args.duration = 2 if args.quick else 5
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.concurrency is None:
        args.concurrency = [1, 16] if args.quick else [1, 8, 16]
    args.store = callers_store(args.store)
    args.routes = once("--routes", args.routes)
    args.concurrency = once("--concurrency", args.concurrency)
    return args


def main() -> None:
    args = parse_arguments()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    rng = random.Random(args.seed)
    routes = [ROUTES[name] for name in dict.fromkeys(args.routes)]
    in_scope = in_scope_texts(args.texts, rng)
    contexts, generated_messages = small_talk(args.texts, args.contexts, rng)

    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    try:
        script = work / "post.lua"
        script.write_text(LUA)
        same = ["--workers", str(args.workers), "--threads", str(args.threads)]
        model_env = {GENERATION_MODE_ENV: args.generation_mode} if args.generation_mode else {}
        servers: list[tuple[str, list[str], dict[str, str]]] = [
            ("on", ["-m", "legacy_assistant", "serve", *same], {**model_env, "LEGACY_ASSISTANT_BATCHING": "on"}),
            ("off", ["-m", "legacy_assistant", "serve", *same], {**model_env, "LEGACY_ASSISTANT_BATCHING": "off"}),
            (
                "hello",
                [
                    "-m",
                    "gunicorn",
                    "-w",
                    str(args.workers),
                    "--threads",
                    str(args.threads),
                    "-k",
                    "gthread",
                    "--keep-alive",
                    "5",
                    "--reuse-port",
                    "--worker-tmp-dir",
                    "/dev/shm",
                    "--chdir",
                    str(ROOT / "benchmarks"),
                    "hello_app:app",
                ],
                {},
            ),
        ]
        if args.dev:
            servers.append(("dev", ["-m", "legacy_assistant", "serve", "--dev"], model_env))

        rounds: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
        memory: dict[str, list[float]] = {}
        with ExitStack() as stack:
            # one port each, all different (picked one by one before any server listened, two
            # could be the same, and the hello app's --reuse-port would have shared it)
            ports = dict(zip((name for name, _, _ in servers), server_ports(len(servers), args.port)))
            running: dict[str, Server] = {}
            for name, command, env in servers:  # all up at once, so that they can take turns
                port = ports[name]
                if name == "hello":
                    command = command + ["-b", f"127.0.0.1:{port}"]
                else:
                    command = command + ["--host", "127.0.0.1", "--port", str(port)]
                    command += ["--store", args.store or f"sqlite:///{work}/{name}.db"]
                print(f"starting {name} ...", file=sys.stderr, flush=True)
                running[name] = stack.enter_context(serving(name, [PYTHON, *command], port, work / f"{name}.log", env))
            for name, server in running.items():
                server.wait_ready(name == "hello", args.workers)
                health = {} if name == "hello" else (get(ports[name], "/health")[1] or {})
                if name != "hello" and any(route.needs_responder for route in routes) and not health.get("responder"):
                    raise SystemExit(f"{name}: no responder loaded (/health: {health}); the routes need one")
            # Checked once, on the first model server, and sent to every server.
            emotions = list((get(ports["on"], "/health")[1] or {}).get("emotions") or ["neutral"])
            bodies, counts = prepare_bodies(
                ports["on"], routes, in_scope, contexts, generated_messages, emotions, work, rng
            )
            bodies["hello"] = work / "hello.jsonl"
            bodies["hello"].write_text("".join(json.dumps(b) + "\n" for b in bodies_for("hello", in_scope, [], rng)))
            for name in running:
                if name == "hello":
                    warm_up(ports[name], [HELLO], script, bodies, 1, name)
                else:
                    warm_up(ports[name], routes, script, bodies, args.senders, name)
            # The hello-world ceiling takes turns with the route it is compared with.
            beside_hello = "parse" if "parse" in ROUTES and ROUTES["parse"] in routes else routes[0].name
            for route in routes:
                for connections in args.concurrency:
                    turn = (
                        ["on", "off"]
                        + (["hello"] if route.name == beside_hello else [])
                        + (["dev"] if args.dev else [])
                    )
                    for index in range(args.rounds):
                        for name in turn if index % 2 == 0 else turn[::-1]:  # neither always goes first
                            cell_route = HELLO if name == "hello" else route
                            rounds[name, cell_route.name, connections].append(
                                measure_cell(
                                    name,
                                    ports[name],
                                    cell_route,
                                    connections,
                                    args.duration,
                                    script,
                                    bodies[cell_route.name],
                                    1 if name == "hello" else args.senders,
                                )
                            )
            memory = {name: server.workers_rss() for name, server in running.items() if name in ("on", "off")}
        results = {key: combine(values) for key, values in rounds.items()}

        report(args, routes, results, memory, counts)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # also after a failed or interrupted run


if __name__ == "__main__":
    run_main(main)
