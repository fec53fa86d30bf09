"""moto's S3 and STS server with IAM enforced, set up like a real account: an admin, a
`postgres-server` user whose keys the database server uses (it may only assume the
role), and the role `S3AccessRole` that may read any bucket (so that a missing bucket
reads as NoSuchBucket rather than AccessDenied)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import boto3

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/S3AccessRole"
BUCKET = "docs"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30):
    """A TCP connect, not a request: moto counts every request against the free ones."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def server_env(url, key):
    """A database server's environment for an S3 endpoint: its keys, the region, the
    endpoint, and nothing else the SDK might find."""
    return {"AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1],
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": url,
            "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true"}


class S3Server:
    def __init__(self, traced=False):
        """`traced`: moto records when each request begins and ends (see `trace`)."""
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
        moto = ([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_traced.py")] if traced
                else [os.path.join(os.path.dirname(sys.executable), "moto_server")])
        self.process = subprocess.Popen([*moto, "-H", "127.0.0.1", "-p", str(self.port)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        self._account()

    def client(self, service, key=None):
        key = key or self.admin
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=key[0], aws_secret_access_key=key[1])

    def _account(self):
        bootstrap = ("AKIAIOSFODNN7BOOTSTRAP", "bootstrap")
        iam = self.client("iam", bootstrap)
        # The three requests moto lets through unauthenticated make the admin.
        iam.create_user(UserName="admin")
        k = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        self.admin = (k["AccessKeyId"], k["SecretAccessKey"])
        iam = self.client("iam")
        iam.create_user(UserName="postgres-server")
        k = iam.create_access_key(UserName="postgres-server")["AccessKey"]
        self.server_key = (k["AccessKeyId"], k["SecretAccessKey"])
        iam.put_user_policy(UserName="postgres-server", PolicyName="assume", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_ARN}]}))
        iam.create_role(RoleName="S3AccessRole", AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/postgres-server"}}]}))
        iam.put_role_policy(RoleName="S3AccessRole", PolicyName="read", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::*"]}]}))
        self.s3 = self.client("s3")
        self.s3.create_bucket(Bucket=BUCKET)

    def add_role(self, name, actions):
        """A role the server's identity may assume, allowed `actions` on any resource."""
        iam = self.client("iam")
        arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        iam.put_user_policy(UserName="postgres-server", PolicyName=f"assume-{name}", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn}]}))
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/postgres-server"}}]}))
        iam.put_role_policy(RoleName=name, PolicyName="allowed", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
        return arn

    def put(self, key, body):
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def trace(self):
        """(began, ended, method) of each request served since the last call (a traced
        server only), on the system's monotonic clock."""
        with urllib.request.urlopen(self.url + "/__trace", timeout=30) as answer:
            return json.loads(answer.read())

    def server_env(self):
        """The database server's environment: its own keys, the region, the endpoint."""
        return server_env(self.url, self.server_key)

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def stop(self):
        self.resume()
        self.process.terminate()
        self.process.wait(timeout=10)
