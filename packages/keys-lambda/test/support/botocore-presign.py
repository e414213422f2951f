"""AWS's own presigner as a test oracle: reads JSON cases on stdin, prints the URLs botocore makes.

Each case: {bucket, key, region, endpoint|null, pathStyle: bool, accessKeyId, secretAccessKey,
sessionToken|null, method: "PUT"|"HEAD", contentType, contentLength, expires, amzDate}. The clock
is pinned to amzDate, so botocore signs for the same time as the URL under test.
"""
import datetime
import json
import sys
from unittest import mock

import boto3
import botocore.auth
from botocore.config import Config

cases = json.load(sys.stdin)
urls = []
clients = {}  # one client per configuration: creating one takes botocore a good part of a second


def client_for(case):
    config = (case["accessKeyId"], case["secretAccessKey"], case.get("sessionToken"), case["region"],
              case.get("endpoint"), case["pathStyle"])
    if config not in clients:
        session = boto3.session.Session(
            aws_access_key_id=case["accessKeyId"],
            aws_secret_access_key=case["secretAccessKey"],
            aws_session_token=case.get("sessionToken"),
        )
        clients[config] = session.client(
            "s3",
            region_name=case["region"],
            endpoint_url=case.get("endpoint"),
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if case["pathStyle"] else "virtual"},
            ),
        )
    return clients[config]


for case in cases:
    when = datetime.datetime.strptime(case["amzDate"], "%Y%m%dT%H%M%SZ")
    client = client_for(case)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        if case["method"] == "PUT":
            params = {
                "Bucket": case["bucket"],
                "Key": case["key"],
                "ContentType": case["contentType"],
                "ContentLength": case["contentLength"],
            }
            urls.append(client.generate_presigned_url("put_object", Params=params, ExpiresIn=case["expires"]))
        else:
            params = {"Bucket": case["bucket"], "Key": case["key"]}
            urls.append(client.generate_presigned_url("head_object", Params=params, ExpiresIn=case["expires"]))
json.dump(urls, sys.stdout)
