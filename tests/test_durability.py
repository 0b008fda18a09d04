"""A reply is sent only after its turn is stored: SIGKILL the whole server (master and
workers at once) in the middle of a load, then every turn a client saw acknowledged is in
the SQLite store. A server stopped as it should be leaves them all in the database file itself."""
import http.client
import json
import signal
import threading
import time

import pytest

from legacy_assistant.stores.base import ConversationState, Turn
from legacy_assistant.stores.sqlite_store import SQLiteStore
from tests.server_process import ServerProcess


def test_sigkill_under_load_loses_no_acknowledged_turn(tmp_path, free_port):
    database = tmp_path / "conversations.db"
    server = ServerProcess(["--workers", "2", "--threads", "4", "--store", f"sqlite:///{database}", "--no-access-log"],
                           port=free_port(), log_path=tmp_path / "server.log",
                           env={"LEGACY_ASSISTANT_MAX_TURNS": "100000"})
    acknowledged = {}
    stop = threading.Event()

    def chat(k):
        sender = f"durable-{k}"
        acknowledged[sender] = []
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        i = 0
        while not stop.is_set():
            message = f"hello number {i}"
            try:
                connection.request("POST", "/api/v1/chat", json.dumps({"sender": sender, "message": message}),
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                body = json.loads(response.read())
            except (OSError, http.client.HTTPException, ValueError):
                return  # the server is gone: this request was never acknowledged
            if response.status == 200 and body["sender"] == sender:
                acknowledged[sender].append(message)
            i += 1

    threads = [threading.Thread(target=chat, args=(k,)) for k in range(8)]
    try:
        for t in threads:
            t.start()
        time.sleep(2.0)
        server.kill9()  # master and workers, no chance to flush or finish anything
        assert server.process.returncode == -signal.SIGKILL
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        server.stop()

    total = sum(len(messages) for messages in acknowledged.values())
    assert total >= 40, f"too little load to mean anything: {total} acknowledged turns"
    store = SQLiteStore(database, max_turns=100000)
    try:
        for sender, messages in acknowledged.items():
            stored = [turn.message for turn in store.history(sender)]
            missing = [m for m in messages if m not in stored]
            assert not missing, f"{sender}: acknowledged but not stored: {missing[:5]}"
            assert store.load(sender).turns >= len(messages)
    finally:
        store.close()


# As in a terminal: a test run as a background job hands its children SIGINT ignored.
DEV_SERVER_WITH_CTRL_C = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from legacy_assistant.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.parametrize("server_kind", ["gunicorn", "dev"])
def test_a_stopped_server_leaves_every_turn_in_the_database_file(tmp_path, free_port, tiny_model_dir, server_kind):
    """Stopped as it should be (SIGTERM to gunicorn's master, Ctrl-C to the development server),
    the server closes its store: SQLite folds the write-ahead log into the database file, so that
    a copy of that file alone (the obvious backup of a stopped server) holds every turn."""
    import shutil

    database = tmp_path / "conversations.db"
    args = ["--model", str(tiny_model_dir), "--no-responder", "--store", f"sqlite:///{database}", "--no-access-log"]
    if server_kind == "gunicorn":
        server = ServerProcess(["--workers", "2", *args], port=free_port(), log_path=tmp_path / "server.log")
    else:
        server = ServerProcess(["--dev", *args], port=free_port(), log_path=tmp_path / "server.log",
                               launcher=("-c", DEV_SERVER_WITH_CTRL_C))
    try:
        for k in range(20):
            status, body = server.request("POST", "/api/v1/chat", {"sender": f"kept-{k}", "message": "hello"})
            assert status == 200, body
        server.signal(signal.SIGTERM if server_kind == "gunicorn" else signal.SIGINT)
        server.process.wait(30)
        assert server.process.returncode == 0, server.log()[-3000:]
    finally:
        server.stop()
    log = tmp_path / "conversations.db-wal"
    assert not log.exists() or log.stat().st_size == 0
    backup = tmp_path / "backup" / "conversations.db"
    backup.parent.mkdir()
    shutil.copyfile(database, backup)
    store = SQLiteStore(backup)
    try:
        assert [len(store.history(f"kept-{k}")) for k in range(20)] == [1] * 20
    finally:
        store.close()


def test_a_store_closed_while_another_is_open_leaves_its_turns_in_the_database_file(tmp_path):
    """SQLite folds the write-ahead log into the database file when the last connection closes:
    a server's workers stop at once, each can find another's connection still open, and then
    none folded it. Each store now empties the log as it closes."""
    import shutil

    database = tmp_path / "conversations.db"
    first, second = SQLiteStore(database), SQLiteStore(database)  # two workers' stores
    try:
        second.save("other", ConversationState(turns=1), Turn("hello", "hi", "greeting", 0.9))  # its connection stays open
        first.save("kept", ConversationState(turns=1), Turn("hello", "hi", "greeting", 0.9))
        first.close()
        backup = tmp_path / "backup" / "conversations.db"
        backup.parent.mkdir()
        shutil.copyfile(database, backup)
    finally:
        second.close()
    copy = SQLiteStore(backup)
    try:
        assert [turn.message for turn in copy.history("kept")] == ["hello"]
    finally:
        copy.close()
