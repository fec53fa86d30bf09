"""Installing ai_loader on a real server, and the queue filling from committed work."""

import os
import re
import threading

import psycopg
import pytest


def test_refuses_to_load_without_preload(plain):
    with plain.connect() as conn:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as err:
            conn.execute("CREATE EXTENSION ai_loader")
        assert err.value.diag.message_primary == "ai_loader must be loaded via shared_preload_libraries"
        assert "shared_preload_libraries = 'ai_loader'" in err.value.diag.message_hint
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            conn.execute("LOAD 'ai_loader'")
        # Nothing was left behind by the failed CREATE EXTENSION.
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'ai_loader'").fetchone() == (0,)


def test_installs_in_several_databases(preloaded):
    with preloaded.connect() as conn:
        for db in ("one", "two"):
            conn.execute(f"CREATE DATABASE {db}")
    for db in ("one", "two"):
        with preloaded.connect(db) as conn:
            conn.execute("CREATE EXTENSION ai_loader")
            schema = conn.execute(
                "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'ai_loader'"
            ).fetchone()
            assert schema == ("ai",)


def test_concurrent_committed_inserts_are_all_queued(preloaded):
    with preloaded.connect() as conn:
        conn.execute("CREATE DATABASE queueing")
    with preloaded.connect("queueing") as conn:
        conn.execute("CREATE EXTENSION ai_loader")
        conn.execute("CREATE TABLE doc (id bigserial PRIMARY KEY, title text, uri text NOT NULL)")
        vid = conn.execute(
            "SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('uri'),"
            " embedding => ai.embedding_local())"
        ).fetchone()[0]

    writers, rows_each = 4, 50

    def write(n):
        with preloaded.connect("queueing") as c:
            for i in range(rows_each):
                with c.transaction():
                    c.execute("INSERT INTO doc (title, uri) VALUES (%s, %s)",
                              (f"w{n}-{i}", f"s3://b/{n}/{i}.md"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    with preloaded.connect("queueing") as conn:
        queued = conn.execute("SELECT ai.vectorizer_queue_pending(%s, exact_count => true)", (vid,)).fetchone()[0]
        assert queued == writers * rows_each
        # One queue row per source row, keyed as the source is.
        missing = conn.execute(
            "SELECT count(*) FROM doc d WHERE NOT EXISTS (SELECT 1 FROM ai._vectorizer_q_1 q WHERE q.id = d.id)"
        ).fetchone()[0]
        assert missing == 0
        # An update of a column the embedding does not read queues nothing more.
        conn.execute("ALTER TABLE doc ADD COLUMN hits int DEFAULT 0")
        conn.execute("UPDATE doc SET hits = hits + 1")
        assert conn.execute("SELECT count(*) FROM ai._vectorizer_q_1").fetchone()[0] == writers * rows_each
        # Dropping the vectorizer without drop_all keeps the store; the triggers are gone.
        conn.execute("SELECT ai.drop_vectorizer(%s)", (vid,))
        conn.execute("INSERT INTO doc (title, uri) VALUES ('late', 's3://b/late.md')")
        assert conn.execute("SELECT to_regclass('ai._vectorizer_q_1')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM doc_embedding_store").fetchone() == (0,)


def readme_settings():
    """README's table of settings: {name: default as written} (a row may name several)."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    table = readme.split("### Configuration (GUCs)", 1)[1].split("\n\n")[2]
    settings = {}
    for row in table.splitlines()[2:]:
        names, default = row.split(" | ")[0:2]
        for name in re.findall(r"`(ai_loader\.[a-z_0-9]+)`", names):
            settings[name] = default.strip("` ")
    return settings


def in_base_units(value, unit):
    """A README default (`1s`, `64MB`, `empty`) as pg_settings.boot_val writes it."""
    if value == "empty":
        return ""
    number = re.fullmatch(r"(\d+)(ms|s|min|kB|MB|GB)?", value)
    if not number or not unit:
        return value
    scale = {"ms": 1, "s": 1000, "min": 60000, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}
    base = {"ms": 1, "s": 1000, "min": 60000, "B": 1, "kB": 1024, "MB": 1024 ** 2}[unit]
    return str(int(number.group(1)) * scale[number.group(2) or unit] // base)


def test_readme_lists_every_setting_with_its_default(preloaded):
    """README's settings table and the settings Postgres knows are the same list, with the
    same defaults; the key settings are hidden from SHOW ALL, and listed anyway."""
    with preloaded.connect() as conn:
        known = {name: (boot, unit) for name, boot, unit in conn.execute(
            "SELECT name, boot_val, unit FROM pg_settings WHERE name LIKE 'ai_loader.%'").fetchall()}
        hidden = {f"ai_loader.{p}_api_key" for p in ("openai", "voyage", "cohere", "mistral", "azure")}
        for name in hidden:  # not in pg_settings (GUC_NO_SHOW_ALL); their boot value is empty
            assert name not in known
            if conn.execute("SELECT current_setting(%s, true) IS NOT NULL", (name,)).fetchone()[0]:
                known[name] = ("", None)
    listed = readme_settings()
    assert set(listed) == set(known), (set(listed) ^ set(known))
    for name, default in listed.items():
        boot, unit = known[name]
        assert in_base_units(default, unit) == (boot or ""), (name, default, boot, unit)
