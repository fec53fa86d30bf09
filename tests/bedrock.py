"""A test server speaking Amazon Bedrock Runtime's InvokeModel for its embedding models
(Titan Text Embeddings v2 and G1, Cohere Embed), with Bedrock's request and answer
bodies and its errors (`x-amzn-ErrorType` and a `message`).

Every request must be SigV4-signed for service `bedrock` in the server's region, with
credentials of the moto account: the database server's own keys, or temporary
credentials moto's STS handed out for a role (looked up in moto, session token
included). A principal may invoke only the models it was allowed (`allow`)."""

import hashlib
import hmac
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

from embedder import vector

MODELS = {
    "amazon.titan-embed-text-v2:0": "titan-v2",
    "amazon.titan-embed-text-v1": "titan-v1",
    "cohere.embed-english-v3": "cohere",
    "cohere.embed-multilingual-v3": "cohere",
    "cohere.embed-v4:0": "cohere",
}


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class Bedrock:
    def __init__(self, moto, region="us-east-1"):
        self.moto = moto
        self.region = region
        self.lock = threading.Lock()
        self.account = "123456789012"
        # The database server's own keys: the IAM user postgres-server.
        self.static = {moto.server_key[0]: (moto.server_key[1], None,
                                            f"arn:aws:iam::{self.account}:user/postgres-server")}
        self.allowed = {}          # principal ARN -> set of model ids
        self.delay = 0.0           # seconds before every answer
        self.throttle = 0          # requests left to answer with ThrottlingException
        self.log = []              # (model, principal, status, body)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def allow(self, principal, *models):
        with self.lock:
            self.allowed.setdefault(principal, set()).update(models)

    def statuses(self):
        with self.lock:
            return [entry[2] for entry in self.log]

    def _credentials(self, access_key):
        """(secret, session token, principal ARN) of an access key moto knows."""
        if access_key in self.static:
            return self.static[access_key]
        with urllib.request.urlopen(f"{self.moto.url}/moto-api/data.json") as r:
            data = json.load(r)
        for role in data.get("sts", {}).get("AssumedRole", []):
            if role.get("access_key_id") == access_key:
                return role["secret_access_key"], role["session_token"], role["role_arn"]
        return None

    def _verify(self, method, raw_path, headers, body):
        """The principal a correctly signed request acts as, or (error type, message)."""
        auth = headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return None, ("MissingAuthenticationTokenException", "Missing Authentication Token")
        fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        access_key, date, region, service, terminal = fields["Credential"].split("/")
        if service != "bedrock" or region != self.region or terminal != "aws4_request":
            return None, ("InvalidSignatureException",
                          f"Credential should be scoped to a valid region and service bedrock, not '{region}/{service}'.")
        found = self._credentials(access_key)
        if found is None:
            return None, ("UnrecognizedClientException", "The security token included in the request is invalid.")
        secret, token, principal = found
        if token is not None and headers.get("X-Amz-Security-Token") != token:
            return None, ("UnrecognizedClientException", "The security token included in the request is invalid.")
        signed = fields["SignedHeaders"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            return None, ("InvalidSignatureException", "Signed headers must include host and x-amz-date.")
        canonical_headers = "".join(f"{h}:{' '.join(headers.get(h, '').strip().split())}\n" for h in signed)
        canonical = "\n".join([method, quote(raw_path, safe="/-_.~"), "", canonical_headers,
                               fields["SignedHeaders"], hashlib.sha256(body).hexdigest()])
        scope = f"{date}/{region}/{service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", headers.get("X-Amz-Date", ""), scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), date), region), service), "aws4_request")
        if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), fields["Signature"]):
            return None, ("InvalidSignatureException",
                          "The request signature we calculated does not match the signature you provided. "
                          "Check your AWS Secret Access Key and signing method.")
        return principal, None

    def _answer(self, model, body, principal):
        """(status, error type or None, answer)."""
        family = MODELS.get(model)
        if family is None:
            return 400, "ValidationException", {"message": "The provided model identifier is invalid."}
        if model not in self.allowed.get(principal, set()):
            who = principal
            if ":role/" in principal:
                who = principal.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/ai_loader"
            return 403, "AccessDeniedException", {"message": (
                f"User: {who} is not authorized to perform: bedrock:InvokeModel on resource: "
                f"arn:aws:bedrock:{self.region}::foundation-model/{model} because no identity-based "
                "policy allows the bedrock:InvokeModel action")}
        with self.lock:
            if self.throttle > 0:
                self.throttle -= 1
                return 429, "ThrottlingException", {"message": "Too many requests, please wait before trying again."}
        try:
            request = json.loads(body)
        except ValueError:
            return 400, "ValidationException", {"message": "Malformed input request, please reformat your input and try again."}
        if family.startswith("titan"):
            allowed = {"inputText", "dimensions", "normalize", "embeddingTypes"} if family == "titan-v2" else {"inputText"}
            extra = sorted(set(request) - allowed)
            if extra:
                return 400, "ValidationException", {"message": f"Malformed input request: extraneous key [{extra[0]}] is not permitted, please reformat your input and try again."}
            text = request.get("inputText")
            if not isinstance(text, str) or not text:
                return 400, "ValidationException", {"message": "Malformed input request: #: required key [inputText] not found, please reformat your input and try again."}
            if len(text) > 50000:
                return 400, "ValidationException", {"message": f"Malformed input request: #/inputText: expected maxLength: 50000, actual: {len(text)}, please reformat your input and try again."}
            dims = request.get("dimensions", 1024) if family == "titan-v2" else 1536
            if dims not in (256, 512, 1024, 1536):
                return 400, "ValidationException", {"message": f"Malformed input request: #/dimensions: {dims} is not a valid enum value, please reformat your input and try again."}
            v = vector(text, dims)
            return 200, None, {"embedding": v, "embeddingsByType": {"float": v},
                               "inputTextTokenCount": len(text.split())}
        texts = request.get("texts")
        if not isinstance(texts, list) or not 1 <= len(texts) <= 96:
            return 400, "ValidationException", {"message": "Malformed input request: #/texts: expected minItems: 1, maxItems: 96, please reformat your input and try again."}
        kind = request.get("input_type")
        if kind not in ("search_document", "search_query", "classification", "clustering"):
            return 400, "ValidationException", {"message": "Malformed input request: #: required key [input_type] not found, please reformat your input and try again."}
        dims = request.get("output_dimension", 1536) if model.startswith("cohere.embed-v4") else 1024
        prefix = "query: " if kind == "search_query" else ""
        vectors = [vector(prefix + t, dims) for t in texts]
        embeddings = {"float": vectors} if request.get("embedding_types") else vectors
        return 200, None, {"id": "c0f7e1a0-0000-4000-8000-000000000000", "embeddings": embeddings, "texts": texts,
                           "response_type": "embeddings_by_type" if request.get("embedding_types") else "embeddings_floats"}

    def _handler(self):
        bedrock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go in two writes: without this, Nagle's algorithm holds
            # the body until the client's delayed ACK (40 ms), which no real server does.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _send(self, status, error, answer):
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", "7d0f3c1e-0000-4000-8000-000000000000")
                if error:
                    self.send_header("x-amzn-ErrorType", f"{error}:http://internal.amazon.com/coral/com.amazon.bedrock/")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("/")
                if len(parts) != 4 or parts[1] != "model" or parts[3] != "invoke":
                    self._send(404, "UnknownOperationException", {"message": "Unknown operation"})
                    return
                model = unquote(parts[2])
                principal, refused = bedrock._verify("POST", self.path, self.headers, body)
                if refused:
                    status, error, answer = 403, refused[0], {"message": refused[1]}
                else:
                    if bedrock.delay:
                        time.sleep(bedrock.delay)
                    status, error, answer = bedrock._answer(model, body, principal)
                with bedrock.lock:
                    bedrock.log.append((model, principal, status, body))
                self._send(status, error, answer)

        return Handler

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
