"""Creates the identities of the least-privilege tests in a moto started with
INITIAL_NO_AUTH_ACTION_COUNT=3: the first three requests (an admin user, its
policy, its access key) go unauthenticated; everything after is signed with
the admin's key and checked against IAM policies.

Usage: iam_setup.py ENDPOINT BUCKET PREFIX
Prints one JSON object: {"admin": [id, secret], "backup": [...], "wide": [...]}.
"""
import json
import sys

import boto3

endpoint, bucket, prefix = sys.argv[1:4]
region = "us-east-1"


def client(service, keys=("unused", "unused")):
    return boto3.client(service, endpoint_url=endpoint, region_name=region,
                        aws_access_key_id=keys[0], aws_secret_access_key=keys[1])


def policy(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


iam = client("iam")
iam.create_user(UserName="admin")
iam.put_user_policy(UserName="admin", PolicyName="all",
                    PolicyDocument=policy([{"Effect": "Allow", "Action": "*", "Resource": "*"}]))
key = iam.create_access_key(UserName="admin")["AccessKey"]
admin = (key["AccessKeyId"], key["SecretAccessKey"])
iam = client("iam", admin)

users = {"admin": admin}
# The provisioning page's backup user: list the bucket, write under the prefix, nothing else.
iam.create_user(UserName="backup")
iam.put_user_policy(UserName="backup", PolicyName="backups", PolicyDocument=policy([
    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"},
    {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"},
]))
# A user someone gave s3:* "to make the backups work".
iam.create_user(UserName="wide")
iam.put_user_policy(UserName="wide", PolicyName="everything",
                    PolicyDocument=policy([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]))
for name in ("backup", "wide"):
    key = iam.create_access_key(UserName=name)["AccessKey"]
    users[name] = (key["AccessKeyId"], key["SecretAccessKey"])

s3 = client("s3", admin)
s3.create_bucket(Bucket=bucket)
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
# A real backup with two versions: the probes must leave both untouched.
s3.put_object(Bucket=bucket, Key=f"{prefix}daily-shop-202612060300.pgdump", Body=b"PGDMP first")
s3.put_object(Bucket=bucket, Key=f"{prefix}daily-shop-202612060300.pgdump", Body=b"PGDMP second")
print(json.dumps(users))
