"""An S3-compatible server (moto) and presigned URLs, for the signed-upload test.

    s3_presign.py serve                        # prints the port, serves until stdin closes
    s3_presign.py presign PORT BUCKET KEY MD5  # makes the bucket; prints JSON {url, headers}
                                               # as flyteadmin's S3 signer answers (Content-MD5
                                               # and x-amz-meta-flytecontentmd5 signed in)
    s3_presign.py md5 PORT BUCKET KEY          # prints the stored object's MD5 (hex)
"""

import base64
import hashlib
import json
import sys

import boto3
from botocore.config import Config


def _client(port):
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # Signature V4, as flyteadmin's signer (the AWS SDK) makes presigned URLs.
        config=Config(signature_version="s3v4"),
    )


def serve():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server._server.server_port, flush=True)
    sys.stdin.read()
    server.stop()


def presign(port, bucket, key, md5_b64):
    s3 = _client(port)
    s3.create_bucket(Bucket=bucket)
    md5_hex = base64.b64decode(md5_b64).hex()
    url = s3.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ContentMD5": md5_b64,
            "Metadata": {"flytecontentmd5": md5_hex},
        },
        ExpiresIn=600,
    )
    headers = {"Content-MD5": md5_b64, "x-amz-meta-flytecontentmd5": md5_hex}
    print(json.dumps({"url": url, "headers": headers}))


def md5(port, bucket, key):
    body = _client(port).get_object(Bucket=bucket, Key=key)["Body"].read()
    print(hashlib.md5(body).hexdigest())


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"serve": serve, "presign": presign, "md5": md5}[cmd](*args)
