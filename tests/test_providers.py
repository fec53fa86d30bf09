"""Every pgai embedding configuration through the worker and ai.vectorizer_embed:
VoyageAI, LiteLLM's model prefixes (served natively) and Amazon Bedrock, each against a
test server speaking its wire protocol; Bedrock's requests SigV4-signed with the
server's credentials or an assumed role's."""

import json
import math

import psycopg
import pytest

from bedrock import Bedrock
from cluster import Cluster
from embedder import vector
from helpers import database_for, queue_empty, scalar, wait_for

TITAN = "amazon.titan-embed-text-v2:0"
SERVER = "arn:aws:iam::123456789012:user/postgres-server"


@pytest.fixture(scope="module")
def bedrock(s3):
    server = Bedrock(s3)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def role(s3):
    """A role the server may assume; Bedrock lets it invoke Cohere Embed."""
    return s3.add_role("BedrockRole", ["bedrock:InvokeModel"])


@pytest.fixture(scope="module")
def cluster(s3, bedrock, embedder):
    key = embedder.api_key
    env = s3.server_env() | {
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock.url,
        "VOYAGE_API_KEY": key, "VOYAGE_API_BASE": embedder.voyage_url,
        "COHERE_API_KEY": key, "COHERE_API_BASE": embedder.cohere_url,
        "AZURE_API_KEY": key, "AZURE_API_BASE": embedder.azure_url,
        "MISTRAL_API_KEY": key, "MISTRAL_API_BASE": embedder.openai_url,
        "OPENAI_API_KEY": key,
    }
    c = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.request_timeout = '3s'",
                 "ai_loader.http_allowed_hosts = '127.0.0.1'", embedder.key_setting], env=env)
    yield c
    c.stop()


@pytest.fixture
def db(cluster, embedder, bedrock, request):
    embedder.reset()
    with bedrock.lock:
        bedrock.allowed.clear()
        bedrock.log.clear()
        bedrock.throttle = 0
    with database_for(cluster, request) as conn:
        conn.execute("CREATE TABLE doc (id int PRIMARY KEY, body text NOT NULL)")
        yield conn


def vectorize(db, embedding, params=(), chunking="ai.chunking_none()", retries=6):
    return scalar(db, f"""SELECT ai.create_vectorizer('doc'::regclass, name => 'docs',
                    loading => ai.loading_column('body', retries => {retries}), embedding => {embedding},
                    chunking => {chunking}, formatting => ai.formatting_python_template('$chunk'))""", params)


def store(db):
    return {r[0]: list(r[1]) for r in db.execute("SELECT id, embedding::real[] FROM doc_embedding_store")}


def close(a, b):
    return len(a) == len(b) and all(abs(x - y) < 1e-6 for x, y in zip(a, b))


BODIES = ["the first document", "a second one", "and a third"]

# (configuration, dimensions, how a query is embedded: with VoyageAI's and Cohere's
# query input type, or as a document)
HTTP = {
    "voyageai": ("ai.embedding_voyageai('voyage-3-lite', 8)", "query"),
    "litellm-voyage": ("ai.embedding_litellm('voyage/voyage-3.5', 8)", "query"),
    "litellm-cohere": ("ai.embedding_litellm('cohere/embed-english-v3.0', 8)", "query"),
    "litellm-azure": ("ai.embedding_litellm('azure/text-embedding-3-small', 8, "
                      "extra_options => '{\"api_version\": \"2024-10-21\"}')", "document"),
    "litellm-mistral": ("ai.embedding_litellm('mistral/mistral-embed', 8)", "document"),
    "litellm-openai": ("ai.embedding_litellm('openai/text-embedding-3-small', 8, "
                       "extra_options => jsonb_build_object('api_base', %s::text))", "document"),
    "litellm-ollama": ("ai.embedding_litellm('ollama/nomic-embed-text', 8, "
                       "extra_options => jsonb_build_object('api_base', %s::text))", "document"),
}


@pytest.mark.parametrize("provider", sorted(HTTP))
def test_http_providers_run_unchanged(db, embedder, provider):
    config, query_kind = HTTP[provider]
    params = ()
    if "%s" in config:
        params = (embedder.ollama_url if "ollama" in provider else embedder.openai_url,)
    vid = vectorize(db, config, params)
    db.execute("INSERT INTO doc VALUES (1, %s), (2, %s), (3, %s)", BODIES)
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 3, what=f"{provider}: 3 rows embedded")
    got = store(db)
    for i, body in enumerate(BODIES, 1):
        assert close(got[i], vector(body, 8)), (provider, i)
    path, body, headers = embedder.bodies[-1]
    headers = {k.lower(): v for k, v in headers.items()}
    if provider == "litellm-azure":
        assert path.startswith("/azure/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21")
        assert headers["api-key"] == embedder.api_key and "authorization" not in headers
        assert body["dimensions"] == 8
    elif provider == "litellm-ollama":
        assert "authorization" not in headers
    else:
        assert headers["authorization"] == f"Bearer {embedder.api_key}"
    if provider in ("voyageai", "litellm-voyage"):
        assert body["input_type"] == "document"
        assert ("output_dimension" in body) == (provider == "litellm-voyage")  # voyage-3.5 takes a size
    if provider == "litellm-cohere":
        assert (body["input_type"], body["embedding_types"]) == ("search_document", ["float"])

    q = list(scalar(db, "SELECT ai.vectorizer_embed('docs', 'what is first')::real[]"))
    expected = vector(("query: " if query_kind == "query" else "") + "what is first", 8)
    assert close(q, expected), provider


def test_http_failures_through_the_worker(db, embedder):
    """Throttling honours Retry-After (Azure), a rejected input fails alone (Cohere),
    the wrong dimensions fail the batch and keep it queued (VoyageAI)."""
    config = ("ai.embedding_litellm('azure/text-embedding-3-small', 8, "
              "extra_options => '{\"api_version\": \"2024-10-21\"}')")
    vid = vectorize(db, config, retries=0)
    embedder.set("rate_limit", count=1, retry_after=2)
    db.execute("INSERT INTO doc VALUES (1, 'throttled once')")
    wait_for(lambda: len(store(db)) == 1, what="the row embedded after the 429")
    with embedder.lock:
        answered = [(t, s) for t, _, s, _ in embedder.requests]
    assert [s for _, s in answered] == [429, 200] and answered[1][0] - answered[0][0] >= 2.0
    db.execute("SELECT ai.drop_vectorizer(%s, drop_all => true)", (vid,))
    db.execute("TRUNCATE doc")

    vid = vectorize(db, "ai.embedding_litellm('cohere/embed-english-v3.0', 8)", retries=0)
    embedder.reject = "poison"
    db.execute("INSERT INTO doc VALUES (1, 'fine'), (2, 'poison'), (3, 'fine too')")
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 2, what="two rows embedded, the poison one failed")
    failed = db.execute(f"SELECT id FROM ai._vectorizer_q_failed_{vid}").fetchall()
    assert failed == [(2,)]
    message = scalar(db, "SELECT message FROM ai.vectorizer_errors WHERE details -> 'key' ->> 'id' = '2'")
    assert "HTTP 400: Invalid input" in message
    embedder.reject = None
    db.execute("SELECT ai.drop_vectorizer(%s, drop_all => true)", (vid,))
    db.execute("TRUNCATE doc")

    vid = vectorize(db, "ai.embedding_voyageai('voyage-3-lite', 8)")
    embedder.set("wrong_dims")
    db.execute("INSERT INTO doc VALUES (1, 'wrong size')")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM ai.vectorizer_errors WHERE message LIKE '%%9 dimensions%%'") >= 1,
             what="an error for the wrong dimensions")
    assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 1
    assert scalar(db, f"SELECT count(*) FROM ai._vectorizer_q_failed_{vid}") == 0


@pytest.mark.parametrize("model,dimensions,with_role", [
    (TITAN, 256, False), ("amazon.titan-embed-text-v1", 1536, False),
    ("cohere.embed-english-v3", 1024, True), ("cohere.embed-v4:0", 512, True)])
def test_bedrock_embeds_with_the_servers_identity_or_a_role(db, bedrock, role, model, dimensions, with_role):
    principal = role if with_role else SERVER
    bedrock.allow(principal, model)
    if with_role:  # LiteLLM's names, the role as aws_role_name
        config = "ai.embedding_litellm(%s, %s, extra_options => jsonb_build_object('aws_role_name', %s::text, 'aws_region_name', 'us-east-1'))"
        params = (f"bedrock/{model}", dimensions, role)
    else:
        config, params = "ai.embedding_bedrock(%s, %s)", (model, dimensions)
    vid = vectorize(db, config, params)
    db.execute("INSERT INTO doc VALUES (1, %s), (2, %s), (3, %s)", BODIES)
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 3, what="3 rows embedded through Bedrock")
    got = store(db)
    for i, body in enumerate(BODIES, 1):
        assert close(got[i], vector(body, dimensions))
        assert abs(math.sqrt(sum(x * x for x in got[i])) - 1) < 1e-5
    with bedrock.lock:
        log = list(bedrock.log)
    # Every request signed (the server refuses others) and made as the expected principal.
    assert {(m, p, s) for m, p, s, _ in log} == {(model, principal, 200)}
    sent = [json.loads(b) for _, _, _, b in log]
    if model.startswith("amazon"):
        assert len(log) == 3 and all("inputText" in b for b in sent)  # one text a request
        assert all(b.get("dimensions") == (256 if model == TITAN else None) for b in sent)
    else:
        assert len(log) == 1 and sent[0]["input_type"] == "search_document"
    q = list(scalar(db, "SELECT ai.vectorizer_embed('docs', 'what is first')::real[]"))
    prefix = "query: " if model.startswith("cohere") else ""
    assert close(q, vector(prefix + "what is first", dimensions))


def test_bedrock_in_pgais_documented_form(db, bedrock, s3):
    """LiteLLM's static keys: the key id in the configuration, the secret the server's
    own AWS_SECRET_ACCESS_KEY (it signs, it is never sent)."""
    bedrock.allow(SERVER, TITAN)
    vid = vectorize(db, """ai.embedding_litellm(%s, 1024, api_key_name => 'AWS_SECRET_ACCESS_KEY',
                           extra_options => jsonb_build_object('aws_access_key_id', %s::text, 'aws_region_name', 'us-east-1'))""",
                    (f"bedrock/{TITAN}", s3.server_key[0]))
    db.execute("INSERT INTO doc VALUES (1, 'signed with a static key')")
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 1, what="embedded with the static key")
    assert close(store(db)[1], vector("signed with a static key", 1024))
    assert {(p, s) for _, p, s, _ in bedrock.log} == {(SERVER, 200)}
    assert s3.server_key[1] not in json.dumps(scalar(db, "SELECT config FROM ai.vectorizer"))


def errors(db):
    return [r[0] for r in db.execute("SELECT message FROM ai.vectorizer_errors ORDER BY recorded")]


def test_bedrock_access_denied_names_the_permission(db, bedrock):
    vid = vectorize(db, "ai.embedding_bedrock(%s, 256)", (TITAN,))
    db.execute("INSERT INTO doc VALUES (1, 'denied')")
    wait_for(lambda: any("bedrock:InvokeModel" in m for m in errors(db)), what="an access denied error")
    message = next(m for m in errors(db) if "bedrock:InvokeModel" in m)
    assert "access denied invoking Bedrock model amazon.titan-embed-text-v2:0 (AccessDeniedException" in message
    assert "the server's AWS credentials needs bedrock:InvokeModel on arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0" in message
    # The row is not spent on the provider's refusal: it waits for the fix.
    assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 1
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 0
    bedrock.allow(SERVER, TITAN)
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 1, timeout=60, what="embedded once allowed")


def test_bedrock_throttling_backs_off_and_keeps_rows_queued(db, bedrock):
    bedrock.allow(SERVER, TITAN)
    vid = vectorize(db, "ai.embedding_bedrock(%s, 256)", (TITAN,))
    bedrock.throttle = 2  # two requests throttled: retried within the batch
    db.execute("INSERT INTO doc VALUES (1, %s), (2, %s), (3, %s)", BODIES)
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 3, what="embedded after throttling")
    assert bedrock.statuses().count(429) == 2
    assert errors(db) == []

    bedrock.throttle = 10_000  # throttled for good: the batch waits, no row is failed
    db.execute("INSERT INTO doc VALUES (4, 'throttled')")
    wait_for(lambda: any("ThrottlingException" in m for m in errors(db)), what="a throttling error")
    assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 1
    assert scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 0
    assert scalar(db, "SELECT max(loading_retries) FROM ai._vectorizer_q_1") == 0
    bedrock.throttle = 0
    wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 4, timeout=60, what="embedded once Bedrock answers")


def test_bedrock_rejects_one_input_and_the_others_go_on(db, bedrock):
    bedrock.allow(SERVER, TITAN)
    vid = vectorize(db, "ai.embedding_bedrock(%s, 256)", (TITAN,), retries=0)
    db.execute("INSERT INTO doc VALUES (1, 'fine'), (2, repeat('long ', 12000)), (3, 'also fine')")
    wait_for(lambda: scalar(db, "SELECT count(*) FROM ai._vectorizer_q_failed_1") == 1 and len(store(db)) == 2,
             what="two rows embedded, the long one failed alone")
    assert sorted(store(db)) == [1, 3]
    assert db.execute("SELECT id, failure_step FROM ai._vectorizer_q_failed_1").fetchall() == [(2, "embedding")]
    message, details = db.execute("SELECT message, details FROM ai.vectorizer_errors").fetchone()
    assert int(details["key"]["id"]) == 2
    assert "Bedrock refused the input (ValidationException)" in message
    assert "expected maxLength: 50000, actual: 59999" in message  # the chunk, trimmed
    assert queue_empty(db, vid)


def test_bedrock_signature_is_checked(cluster, bedrock, s3):
    """The test server itself refuses what is not signed with known credentials."""
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"{bedrock.url}/model/{TITAN}/invoke", data=b'{"inputText": "x"}', method="POST",
                                 headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAFAKE/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 403 and e.value.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException")


def test_check_embedding_says_what_fails(db, embedder, bedrock, role):
    steps = lambda sql, *p: {r[0]: (r[1], r[2], r[3]) for r in db.execute(f"SELECT * FROM ai.check_embedding({sql})", p)}
    ok = steps("ai.embedding_voyageai('voyage-3-lite', 8)")
    assert all(v[0] for v in ok.values()), ok
    assert ok["credentials"][1] == f"the server's key VOYAGE_API_KEY is sent to {embedder.voyage_url}"
    assert "embedded a probe" in ok["embed"][1] and "8 dimensions, norm 1.0000" in ok["embed"][1]
    assert embedder.api_key not in json.dumps(ok)

    missing = steps("ai.embedding_voyageai('voyage-3-lite', 8, api_key_name => 'OTHER_API_KEY')")
    assert missing["credentials"][0] is False and "ai_loader.other_api_key" in missing["credentials"][2]
    assert missing["embed"][0] is False and "HTTP 401" in missing["embed"][1]

    wrong = steps("ai.embedding_litellm('cohere/embed-english-v3.0', 8)")
    assert wrong["embed"][0] is True
    embedder.set("wrong_dims")
    wrong = steps("ai.embedding_litellm('cohere/embed-english-v3.0', 8)")
    assert wrong["embed"][0] is False and "9 dimensions" in wrong["embed"][1] and "dimensions" in wrong["embed"][2]
    embedder.set("ok")

    denied = steps("ai.embedding_bedrock(%s, 1024, %s)", TITAN, role)
    assert denied["credentials"][1].startswith(f"the role {role}")
    assert denied["embed"][0] is False and f"the role {role} needs bedrock:InvokeModel" in denied["embed"][1]
    bedrock.allow(role, TITAN)
    assert steps("ai.embedding_bedrock(%s, 1024, %s)", TITAN, role)["embed"][0] is True

    elsewhere = steps("ai.embedding_bedrock('amazon.titan-embed-text-v2:0', 1024, region => 'eu-west-3')")
    assert elsewhere["embed"][0] is False and "eu-west-3" in elsewhere["embed"][1]
    unknown = steps("ai.embedding_bedrock('amazon.titan-embed-text-v2:9', 1024)")
    assert unknown["embed"][0] is False
    assert ("Bedrock does not know model amazon.titan-embed-text-v2:9 in us-east-1 (ValidationException: "
            "The provided model identifier is invalid.): check the model id and the region") in unknown["embed"][1]

    bedrock.allow(SERVER, TITAN)
    vectorize(db, "ai.embedding_bedrock(%s, 256)", (TITAN,))
    by_name = steps("'docs'")
    assert [k for k in by_name] == ["configuration", "credentials", "endpoint", "embed"]
    assert all(v[0] for v in by_name.values()), by_name


def test_what_is_refused_at_creation(db):
    def sqlstate(sql):
        with pytest.raises(psycopg.Error) as e:
            db.execute(sql)
        return e.value.sqlstate, e.value.diag.message_primary, e.value.diag.message_hint

    state, message, hint = sqlstate("SELECT ai.embedding_litellm('huggingface/BAAI/bge-small-en', 384)")
    assert state == "0A000" and message == 'litellm provider "huggingface/" is not supported'
    assert "ai.embedding_openai" in hint
    state, message, hint = sqlstate("SELECT ai.embedding_litellm('openai/m', 8, extra_options => '{\"timeout\": 5}')")
    assert state == "22023" and "timeout" in message and "api_base, user" in hint
    state, message, _ = sqlstate("SELECT ai.embedding_litellm('bedrock/amazon.titan-embed-text-v1', 1536, "
                                 "extra_options => '{\"aws_secret_access_key\": \"x\"}')")
    assert state == "22023" and "not accepted" in message
    state, message, hint = sqlstate(f"SELECT ai.embedding_bedrock('{TITAN}', 300)")
    assert state == "22023" and "256, 512 or 1024" in message
    state, _, _ = sqlstate("SELECT ai.embedding_voyageai('voyage-3', 8, input_type => 'passage')")
    assert state == "22023"


def test_bedrock_needs_the_s3_reader_role(db, cluster, bedrock):
    """Bedrock acts as the server's AWS identity: creating a vectorizer with it takes
    ai_loader_s3_reader, and its worker stops when the owner loses the membership."""
    db.execute("CREATE ROLE plain_user LOGIN")
    db.execute("SELECT ai.grant_ai_usage('plain_user')")
    db.execute("ALTER TABLE doc OWNER TO plain_user")
    db.execute("GRANT CREATE ON SCHEMA public TO plain_user")
    create = f"""SELECT ai.create_vectorizer('doc'::regclass, loading => ai.loading_column('body'),
                 embedding => ai.embedding_bedrock('{TITAN}', 256), chunking => ai.chunking_none())"""
    try:
        with cluster.connect(db.info.dbname, user="plain_user") as user:
            with pytest.raises(psycopg.Error) as e:
                user.execute(create)
            assert e.value.sqlstate == "42501" and "Amazon Bedrock" in e.value.diag.message_primary
            assert "GRANT ai_loader_s3_reader TO plain_user" in e.value.diag.message_hint
            with pytest.raises(psycopg.Error) as e:
                user.execute(f"SELECT * FROM ai.check_embedding(ai.embedding_bedrock('{TITAN}', 256))")
            assert e.value.sqlstate == "42501"

            db.execute("GRANT ai_loader_s3_reader TO plain_user")
            bedrock.allow(SERVER, TITAN)
            vid = scalar(user, create)
            user.execute("INSERT INTO doc VALUES (1, 'allowed')")
            wait_for(lambda: queue_empty(db, vid) and len(store(db)) == 1, what="embedded while a member")
            db.execute("REVOKE ai_loader_s3_reader FROM plain_user")
            user.execute("INSERT INTO doc VALUES (2, 'after the revoke')")
            wait_for(lambda: any("may no longer embed with Amazon Bedrock" in m for m in errors(db)),
                     what="the vectorizer stopped")
            assert len(store(db)) == 1
            assert scalar(db, "SELECT ai.vectorizer_queue_pending(%s, true)", (vid,)) == 1
    finally:
        db.execute("DROP TABLE doc CASCADE")
        db.execute("DROP OWNED BY plain_user")
        db.execute("DROP ROLE plain_user")
