#!/usr/bin/python3
"""The instance metadata service of one boot-test instance, on 169.254.169.254:80 inside the
instance's network namespace. Python's standard library only (Debian's /usr/bin/python3).

It answers what etcd-discovery asks, shaped as EC2 documents them (the same documents as the
lab's stub in tests/lab/lab.rs): the IMDSv2 token (PUT /latest/api/token, required on every
other call), meta-data/instance-id, local-ipv4, local-hostname, placement/availability-zone,
placement/region, dynamic/instance-identity/document and an instance profile's credentials.

--down-for N: listen only N seconds after start (connections are refused until then), as an
instance whose metadata service is not reachable yet for the first seconds of a boot.
"""

import argparse
import http.server
import json
import sys
import time

TOKEN = "boot-test-imds-token"
ROLE = "etcd-boot-test-role"


def documents(a):
    hostname = "ip-%s.ec2.internal" % a.ip.replace(".", "-")
    identity = {
        "accountId": "123456789012",
        "architecture": "x86_64",
        "availabilityZone": a.region + "a",
        "imageId": a.image,
        "instanceId": a.instance_id,
        "instanceType": "t3.micro",
        "privateIp": a.ip,
        "region": a.region,
        "version": "2017-09-30",
    }
    credentials = {
        "Code": "Success",
        "LastUpdated": "2026-11-28T00:00:00Z",
        "Type": "AWS-HMAC",
        "AccessKeyId": "AKIDBOOTTEST",
        "SecretAccessKey": "boot-test-secret",
        "Token": "boot-test-session-token",
        "Expiration": "2099-01-01T00:00:00Z",
    }
    return {
        "/latest/meta-data/instance-id": a.instance_id,
        "/latest/meta-data/local-ipv4": a.ip,
        "/latest/meta-data/local-hostname": hostname,
        "/latest/meta-data/placement/availability-zone": a.region + "a",
        "/latest/meta-data/placement/region": a.region,
        "/latest/dynamic/instance-identity/document": json.dumps(identity),
        "/latest/meta-data/iam/security-credentials/": ROLE,
        "/latest/meta-data/iam/security-credentials/" + ROLE: json.dumps(credentials),
    }


def handler(docs):
    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, status, body=""):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self):
            if self.path == "/latest/api/token":
                self.answer(200, TOKEN)
            else:
                self.answer(404)

        def do_GET(self):
            if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                self.answer(401)
            elif self.path in docs:
                self.answer(200, docs[self.path])
            else:
                self.answer(404)

        def log_message(self, fmt, *args):
            sys.stderr.write("imds: %s\n" % (fmt % args))

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--instance-id", required=True)
    p.add_argument("--ip", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--image", default="ami-12c6146b")
    p.add_argument("--listen", default="169.254.169.254")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--down-for", type=float, default=0)
    a = p.parse_args()
    if a.down_for > 0:
        sys.stderr.write("imds: refusing connections for %.0f s\n" % a.down_for)
        time.sleep(a.down_for)
    server = http.server.ThreadingHTTPServer((a.listen, a.port), handler(documents(a)))
    sys.stderr.write("imds: %s answering on %s:%d\n" % (a.instance_id, a.listen, a.port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
