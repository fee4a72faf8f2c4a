#!/usr/bin/env python3
"""Local stack helper for comps-webhooks.

Subcommands (run with .venv/bin/python, see infra/venv.sh):

  translate  SAM template -> plain CloudFormation JSON (offline, no credentials).
  up         Create the template's *data* resources (DynamoDB tables, SQS queues,
             KMS keys, log groups, ...) as a CloudFormation stack in an AWS emulator
             (moto server or LocalStack), then each function's IAM role as the
             template declares it, and a local runner (an IAM user allowed to assume
             those roles), then print one JSON document describing the resolved
             environment and role of every function and the event source mappings
             (SQS queues, DynamoDB table streams) that a local runner has to emulate.
             With --enforce-iam it then makes moto check every later call against the
             caller's policies.

Nothing but the JSON document goes to stdout; diagnostics go to stderr. The template's
intrinsic functions (Ref, Fn::GetAtt, Fn::Sub...) are read and resolved by resolver.py,
beside this file.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from resolver import Resolver, StackError, aws_call, getatt_target, references

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = ROOT / "template.yaml"
DEFAULT_REGION = "us-east-1"

# Resource types created in the emulator by `up`. Everything else (functions,
# roles, APIs, permissions and above all AWS::Lambda::EventSourceMapping, which
# would make moto invoke Lambda on every SendMessage) is left to the local runner.
DATA_RESOURCE_TYPES = (
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::Logs::LogGroup",
)
DATA_RESOURCE_PREFIXES = ("AWS::SES::",)

# Parameters that have no default because a deploy must choose them (SES identities, the
# admins' identity provider) get these values locally, where they only need to be valid.
LOCAL_PARAMETER_VALUES = {
    "AlertEmails": "admin@comps-webhooks.local",
    "AlertFrom": "alerts@comps-webhooks.local",
    "AdminJwtIssuer": "https://issuer.comps-webhooks.local",
    "AdminJwtAudience": "comps-webhooks-local",
}

# The IAM user the local runners (gateway, tests, bench) sign in as: it may do anything, as
# an operator may, and each function's role trusts it, so the runners call AWS with the
# credentials of the role they run a function under (sts:AssumeRole), as Lambda does.
LOCAL_RUNNER_USER = "comps-webhooks-local-runner"


def log(msg: str) -> None:
    print(f"stack.py: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- YAML


def load_template(path: Path) -> dict[str, Any]:
    """Load a CloudFormation/SAM template (YAML with short-form tags, or JSON)."""
    import yaml

    class CfnLoader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.Loader, tag_suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if tag_suffix == "Ref":
            return {"Ref": value}
        if tag_suffix == "GetAtt" and isinstance(value, str):
            logical, _, attr = value.partition(".")
            return {"Fn::GetAtt": [logical, attr]}
        if tag_suffix == "Condition":
            return {"Condition": value}
        return {f"Fn::{tag_suffix}": value}

    CfnLoader.add_multi_constructor("!", construct)
    # CloudFormation treats timestamps/dates as strings (e.g. "2012-10-17").
    CfnLoader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    try:
        text = path.read_text()
    except OSError as exc:
        raise StackError(f"cannot read template {path}: {exc}") from exc
    try:
        data = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise StackError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise StackError(f"{path} has no Resources section")
    return data


# --------------------------------------------------------------------------- translate


def translate(template_path: Path, region: str) -> dict[str, Any]:
    """Translate a SAM template to CloudFormation without network or credentials."""
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = load_template(template_path)
    if "Transform" not in sam:
        return sam  # already plain CloudFormation

    # samtranslator only accepts S3 locations; `sam build` would have replaced
    # local paths (CodeUri: .) with built artifacts. Use placeholders.
    for logical_id, res in sam["Resources"].items():
        props = res.get("Properties") or {}
        if res.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            key = "CodeUri" if res["Type"] == "AWS::Serverless::Function" else "ContentUri"
            uri = props.get(key)
            if isinstance(uri, str) and not uri.startswith("s3://"):
                props[key] = f"s3://local-placeholder-bucket/{logical_id}.zip"
        for key in ("DefinitionUri",):
            uri = props.get(key)
            if isinstance(uri, str) and not uri.startswith("s3://"):
                props[key] = f"s3://local-placeholder-bucket/{logical_id}-definition.yaml"

    # A session with only a region: no credentials, no network. Managed policy
    # names are not used by this template, so the policy map is empty.
    session = boto3.session.Session(region_name=region)
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=session)
    try:
        return translator.translate(
            sam,
            parameter_values={},
            passthrough_metadata=True,
            get_managed_policy_map=lambda: {},
        )
    except InvalidDocumentException as exc:
        causes = "\n".join(f"  - {c.message}" for c in exc.causes)
        raise StackError(f"SAM translation of {template_path} failed:\n{causes}") from exc


# --------------------------------------------------------------------------- data resources


def json_text_with_intrinsics(doc: Any) -> Any:
    """Serialize a JSON document to text, keeping string-valued intrinsics.

    Returns a plain string when the document has no intrinsic functions, else an
    Fn::Join that splices the intrinsics into the JSON text (inside the quotes).
    """
    found: list[Any] = []

    def mark(node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1 and (next(iter(node)) == "Ref" or next(iter(node)).startswith("Fn::")):
                found.append(node)
                return f"@@INTRINSIC{len(found) - 1}@@"
            return {k: mark(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mark(v) for v in node]
        return node

    text = json.dumps(mark(doc), separators=(",", ":"))
    if not found:
        return text
    parts: list[Any] = []
    for i, chunk in enumerate(re.split(r"@@INTRINSIC(\d+)@@", text)):
        if i % 2:
            parts.append(found[int(chunk)])
        elif chunk:
            parts.append(chunk)
    return {"Fn::Join": ["", parts]}


def is_data_type(rtype: str) -> bool:
    return rtype in DATA_RESOURCE_TYPES or rtype.startswith(DATA_RESOURCE_PREFIXES)


def data_only(cfn: dict[str, Any]) -> dict[str, Any]:
    """Keep only the data resources (and what they need) of a CloudFormation template."""
    resources = cfn.get("Resources", {})
    keep = {lid for lid, r in resources.items() if is_data_type(r.get("Type", ""))}

    def deps(res: dict[str, Any]) -> set[str]:
        d = references(res)
        depends = res.get("DependsOn", [])
        d |= {depends} if isinstance(depends, str) else set(depends)
        return d

    # Drop kept resources that depend on dropped ones (e.g. a queue policy naming a function).
    changed = True
    while changed:
        changed = False
        for lid in sorted(keep):
            missing = {d for d in deps(resources[lid]) if d in resources and d not in keep}
            if missing:
                log(f"not creating {lid}: it references {', '.join(sorted(missing))}")
                keep.discard(lid)
                changed = True

    out: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09"}
    out["Description"] = "comps-webhooks local data resources (generated by infra/local/stack.py)"
    out["Resources"] = {}
    for lid in sorted(keep):
        res = copy.deepcopy(resources[lid])
        res.pop("Metadata", None)
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::KMS::Key" and isinstance(props.get("KeyPolicy"), dict):
            # moto quirk: a KeyPolicy given as a JSON object is stored as a dict and
            # every later KMS call on the key (DescribeKey, Encrypt, Decrypt...) then
            # fails with a 500 (json.loads(dict)). CloudFormation also accepts the
            # policy as a JSON string, so pass it as one (intrinsics kept via Fn::Join).
            props["KeyPolicy"] = json_text_with_intrinsics(props["KeyPolicy"])
        out["Resources"][lid] = res

    outputs = {}
    for name, o in (cfn.get("Outputs") or {}).items():
        refs = references(o)
        if all(r in keep or r not in resources for r in refs):
            outputs[name] = o
    if outputs:
        out["Outputs"] = outputs

    if cfn.get("Mappings"):
        out["Mappings"] = cfn["Mappings"]

    # Conditions only reference parameters/other conditions; keep those a kept
    # resource or output uses (transitively).
    conditions = cfn.get("Conditions") or {}
    used_conds: set[str] = set()
    pending = [r.get("Condition") for r in out["Resources"].values() if r.get("Condition")]
    pending += [o.get("Condition") for o in outputs.values() if o.get("Condition")]

    def cond_refs(node: Any) -> set[str]:
        s: set[str] = set()
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "Condition" and isinstance(v, str):
                    s.add(v)
                elif k == "Fn::If" and isinstance(v, list) and v and isinstance(v[0], str):
                    s.add(v[0])
                    s |= cond_refs(v[1:])
                else:
                    s |= cond_refs(v)
        elif isinstance(node, list):
            for i in node:
                s |= cond_refs(i)
        return s

    pending += list(cond_refs(out["Resources"]) | cond_refs(outputs))
    while pending:
        c = pending.pop()
        if c in conditions and c not in used_conds:
            used_conds.add(c)
            pending += list(cond_refs(conditions[c]))
    if used_conds:
        out["Conditions"] = {c: conditions[c] for c in sorted(used_conds)}

    params = cfn.get("Parameters") or {}
    used_params = references(out) & set(params)
    if used_params:
        out["Parameters"] = {p: params[p] for p in sorted(used_params)}
    return out


# --------------------------------------------------------------------------- AWS


def aws_clients(endpoint: str, region: str, credentials: dict[str, str] | None = None):
    """Clients for the emulator: with `credentials` (access_key_id, secret_access_key) if
    given, else the environment's, else the emulator's usual test/test."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {"region_name": region}
    if credentials:
        kwargs["aws_access_key_id"] = credentials["access_key_id"]
        kwargs["aws_secret_access_key"] = credentials["secret_access_key"]
    elif not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        kwargs["aws_access_key_id"] = "test"
        kwargs["aws_secret_access_key"] = "test"
    session = boto3.session.Session(**kwargs)
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)

    class Clients:
        def __init__(self) -> None:
            self._cache: dict[str, Any] = {}

        def __getattr__(self, name: str) -> Any:
            if name not in self._cache:
                self._cache[name] = session.client(name, endpoint_url=endpoint, config=cfg)
            return self._cache[name]

    return Clients()


def describe_stack(aws, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        stacks = aws.cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        msg = exc.response.get("Error", {}).get("Message", "")
        if "does not exist" in msg:
            return None
        raise
    live = [s for s in stacks if s.get("StackStatus") != "DELETE_COMPLETE"]
    return live[0] if live else None


def stack_failure_reasons(aws, name: str) -> str:
    try:
        events = aws.cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    except Exception:  # noqa: BLE001 - best effort diagnostics
        return ""
    lines = [
        f"  {e.get('LogicalResourceId')}: {e.get('ResourceStatus')} {e.get('ResourceStatusReason')}"
        for e in events
        if "FAILED" in (e.get("ResourceStatus") or "")
    ]
    return "\n".join(lines[:20])


def wait_for_stack(aws, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack = aws_call("describe_stacks", describe_stack, aws, name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            return stack  # type: ignore[return-value]
        if not status.endswith("_IN_PROGRESS"):
            reasons = stack_failure_reasons(aws, name)
            raise StackError(
                f"stack {name} ended in {status}"
                + (f": {stack.get('StackStatusReason')}" if stack and stack.get("StackStatusReason") else "")
                + (f"\n{reasons}" if reasons else "")
            )
        if time.monotonic() > deadline:
            raise StackError(
                f"timed out after {timeout:.0f}s waiting for stack {name} (last status {status}). "
                "moto leaves a stack whose resource failed in CREATE_IN_PROGRESS for good: "
                "restart the emulator, delete the stack or use another --stack-name"
            )
        time.sleep(0.5)


def ensure_stack(aws, name: str, template: dict[str, Any], params: dict[str, str], timeout: float) -> None:
    stack = aws_call("describe_stacks", describe_stack, aws, name)
    if stack is not None:
        status = stack["StackStatus"]
        if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            log(f"reusing stack {name} ({status})")
            check_same_resources(aws, name, template)
            return
        if status.endswith("_IN_PROGRESS") and not status.startswith("DELETE"):
            log(f"stack {name} is {status}; waiting")
            wait_for_stack(aws, name, timeout)
            check_same_resources(aws, name, template)
            return
        # CREATE_FAILED, ROLLBACK_COMPLETE, DELETE_FAILED...: cannot be used or updated.
        log(f"stack {name} is {status}; deleting it and creating it again")
        aws_call("delete_stack", aws.cloudformation.delete_stack, StackName=name)
        deadline = time.monotonic() + timeout
        while aws_call("describe_stacks", describe_stack, aws, name) is not None:
            if time.monotonic() > deadline:
                raise StackError(f"timed out waiting for stack {name} to be deleted")
            time.sleep(0.5)

    cfn_params = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())]
    log(f"creating stack {name} ({len(template['Resources'])} resources)")
    try:
        aws_call(
            "create_stack",
            aws.cloudformation.create_stack,
            StackName=name,
            TemplateBody=json.dumps(template),
            Parameters=cfn_params,
        )
    except StackError as exc:
        reasons = stack_failure_reasons(aws, name)
        raise StackError(
            f"{exc}\n(the emulator could not create the stack; moto answers HTTP 500 when a "
            "resource fails - its own log has the traceback)" + (f"\n{reasons}" if reasons else "")
        ) from exc
    wait_for_stack(aws, name, timeout)
    log(f"stack {name} is CREATE_COMPLETE")


def check_same_resources(aws, name: str, template: dict[str, Any]) -> None:
    have = stack_resources(aws, name)
    want = set(template["Resources"])
    missing = sorted(want - set(have))
    if missing:
        raise StackError(
            f"existing stack {name} lacks {', '.join(missing)} (it was created from an older "
            f"template); delete it or use another --stack-name"
        )


def stack_resources(aws, name: str) -> dict[str, dict[str, Any]]:
    res = aws_call(
        "describe_stack_resources", aws.cloudformation.describe_stack_resources, StackName=name
    )["StackResources"]
    return {r["LogicalResourceId"]: r for r in res}


def apply_emulator_fixups(aws, cfn: dict[str, Any], resources: dict[str, dict[str, Any]]) -> None:
    """Apply table settings that moto's CloudFormation ignores (TTL, point-in-time recovery),
    and a stream the template added to a table of a reused stack (moto's CloudFormation
    creates a new table with its stream, but never updates a reused one).

    Idempotent; harmless against LocalStack or real AWS, where they are already set.
    """
    for lid, res in cfn["Resources"].items():
        if res.get("Type") != "AWS::DynamoDB::Table" or lid not in resources:
            continue
        table = resources[lid]["PhysicalResourceId"]
        props = res.get("Properties") or {}
        ensure_table_stream(aws, table, props.get("StreamSpecification"))
        ttl = props.get("TimeToLiveSpecification")
        if isinstance(ttl, dict) and str(ttl.get("Enabled")).lower() == "true":
            cur = aws_call("describe_time_to_live", aws.dynamodb.describe_time_to_live, TableName=table)
            desc = cur.get("TimeToLiveDescription", {})
            if desc.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                aws_call(
                    f"update_time_to_live {table}",
                    aws.dynamodb.update_time_to_live,
                    TableName=table,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
                log(f"enabled TTL on {table} ({ttl['AttributeName']})")
        pitr = props.get("PointInTimeRecoverySpecification")
        if isinstance(pitr, dict) and str(pitr.get("PointInTimeRecoveryEnabled")).lower() == "true":
            cur = aws_call(
                "describe_continuous_backups", aws.dynamodb.describe_continuous_backups, TableName=table
            )
            status = (
                cur.get("ContinuousBackupsDescription", {})
                .get("PointInTimeRecoveryDescription", {})
                .get("PointInTimeRecoveryStatus")
            )
            if status != "ENABLED":
                aws_call(
                    f"update_continuous_backups {table}",
                    aws.dynamodb.update_continuous_backups,
                    TableName=table,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
                log(f"enabled point-in-time recovery on {table}")


def ensure_table_stream(aws, table: str, spec: Any) -> None:
    """Gives `table` the stream `spec` (a StreamSpecification) declares, if it has none yet."""
    if not isinstance(spec, dict) or not spec.get("StreamViewType"):
        return
    wanted = spec["StreamViewType"]
    desc = aws_call(f"describe_table {table}", aws.dynamodb.describe_table, TableName=table)["Table"]
    current = desc.get("StreamSpecification") or {}
    if desc.get("LatestStreamArn") and current.get("StreamEnabled"):
        if current.get("StreamViewType") != wanted:
            # A stream's view type cannot change in place (AWS: disable, then enable a new
            # stream; moto cannot enable one again on the same table).
            raise StackError(
                f"table {table} has a {current.get('StreamViewType')} stream and the template "
                f"wants {wanted}; restart the emulator or delete the stack"
            )
        return
    aws_call(
        f"update_table {table} (enable its stream)",
        aws.dynamodb.update_table,
        TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": wanted},
    )
    log(f"enabled the {wanted} stream of {table}")


# --------------------------------------------------------------------------- IAM


def iam_enforced(endpoint: str, region: str) -> bool:
    """Whether the emulator checks IAM: it then refuses credentials it has never issued."""
    from botocore.exceptions import ClientError

    probe = aws_clients(endpoint, region, {"access_key_id": "AKIAUNKNOWNPROBE0000", "secret_access_key": "x"})
    try:
        aws_call("probe whether IAM is enforced", probe.sts.get_caller_identity)
    except StackError as exc:
        if isinstance(exc.__cause__, ClientError):
            code = exc.__cause__.response.get("Error", {}).get("Code", "")
            return code in ("InvalidClientTokenId", "AccessDenied", "UnrecognizedClientException", "InvalidAccessKeyId")
        raise
    return False


def enforce_iam(endpoint: str) -> None:
    """From now on moto checks every call against the caller's policies (moto's own switch)."""
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        # Not a form: moto reads the raw body as the number of calls left unchecked.
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
    except OSError as exc:
        raise StackError(f"cannot turn on IAM enforcement at {endpoint} (is it moto?): {exc}") from exc
    log("IAM is enforced from now on: every call is checked against the caller's policies")


def ensure_local_runner(aws, saved: dict[str, Any] | None) -> dict[str, str]:
    """The local runner's IAM user and an access key for it (the saved one while it is valid)."""
    from botocore.exceptions import ClientError

    try:
        user = aws.iam.get_user(UserName=LOCAL_RUNNER_USER)["User"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise StackError(f"get_user {LOCAL_RUNNER_USER}: {exc}") from exc
        user = aws_call("create the local runner user", aws.iam.create_user, UserName=LOCAL_RUNNER_USER)["User"]
    aws_call(
        "allow the local runner everything",
        aws.iam.put_user_policy,
        UserName=LOCAL_RUNNER_USER,
        PolicyName="operator",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    keys = aws_call("list the local runner's keys", aws.iam.list_access_keys, UserName=LOCAL_RUNNER_USER)
    key_ids = [k["AccessKeyId"] for k in keys.get("AccessKeyMetadata", [])]
    if saved and saved.get("access_key_id") in key_ids and saved.get("secret_access_key"):
        return {"user_arn": user["Arn"], **{k: saved[k] for k in ("access_key_id", "secret_access_key")}}
    for key_id in key_ids:
        aws_call("delete an old key", aws.iam.delete_access_key, UserName=LOCAL_RUNNER_USER, AccessKeyId=key_id)
    key = aws_call("create a key", aws.iam.create_access_key, UserName=LOCAL_RUNNER_USER)["AccessKey"]
    return {
        "user_arn": user["Arn"],
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
    }


def local_trust_policy(runner_arn: str) -> dict[str, Any]:
    """On AWS a function's role trusts lambda.amazonaws.com; locally the runner stands in for
    Lambda, so the role trusts the runner (moto evaluates AWS principals only)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": runner_arn}, "Action": "sts:AssumeRole"}],
    }


def ensure_roles(
    aws, cfn: dict[str, Any], resolver: "Resolver", stack_name: str, runner_arn: str
) -> dict[str, dict[str, Any]]:
    """Creates (or brings up to date) every AWS::IAM::Role of the template with its inline
    policies and managed policy ARNs resolved; returns logical id -> {arn, policies,
    managed_policy_arns}."""
    from botocore.exceptions import ClientError

    roles: dict[str, dict[str, Any]] = {}
    for lid, res in sorted(cfn["Resources"].items()):
        if res.get("Type") != "AWS::IAM::Role":
            continue
        props = res.get("Properties") or {}
        try:
            policies = resolver.resolve(props.get("Policies") or [])
            managed = resolver.resolve(props.get("ManagedPolicyArns") or [])
        except StackError as exc:
            raise StackError(f"{lid}: {exc}") from exc
        name = f"{stack_name}-{lid}"[:64]
        trust = json.dumps(local_trust_policy(runner_arn))
        try:
            role = aws.iam.get_role(RoleName=name)["Role"]
            aws_call(f"update the trust of {name}", aws.iam.update_assume_role_policy, RoleName=name, PolicyDocument=trust)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise StackError(f"get_role {name}: {exc}") from exc
            role = aws_call(f"create role {name}", aws.iam.create_role, RoleName=name, AssumeRolePolicyDocument=trust)["Role"]
        wanted = {p["PolicyName"]: json.dumps(p["PolicyDocument"]) for p in policies}
        existing = aws_call(f"list policies of {name}", aws.iam.list_role_policies, RoleName=name)["PolicyNames"]
        for old in set(existing) - set(wanted):
            aws_call(f"delete policy {old} of {name}", aws.iam.delete_role_policy, RoleName=name, PolicyName=old)
        for policy_name, document in wanted.items():
            aws_call(
                f"put policy {policy_name} on {name}",
                aws.iam.put_role_policy,
                RoleName=name,
                PolicyName=policy_name,
                PolicyDocument=document,
            )
        attached = aws_call(f"list managed policies of {name}", aws.iam.list_attached_role_policies, RoleName=name)
        attached_arns = {p["PolicyArn"] for p in attached["AttachedPolicies"]}
        for arn in attached_arns - set(managed):
            aws_call(f"detach {arn} from {name}", aws.iam.detach_role_policy, RoleName=name, PolicyArn=arn)
        for arn in set(managed) - attached_arns:
            aws_call(
                f"attach {arn} to {name} (moto knows AWS managed policies only with "
                "MOTO_IAM_LOAD_MANAGED_POLICIES=true)",
                aws.iam.attach_role_policy,
                RoleName=name,
                PolicyArn=arn,
            )
        roles[lid] = {
            "arn": role["Arn"],
            "policies": {p["PolicyName"]: p["PolicyDocument"] for p in policies},
            "managed_policy_arns": managed,
        }
    log(f"roles up to date: {', '.join(sorted(roles)) or 'none'}")
    return roles


def function_role(lid: str, props: dict[str, Any]) -> str | None:
    """The logical id of the role a function runs under (`Role: !GetAtt X.Arn`)."""
    role = props.get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        ga = role["Fn::GetAtt"]
        return ga.split(".", 1)[0] if isinstance(ga, str) else ga[0]
    return None


# --------------------------------------------------------------------------- resolving


def env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(env_string(v) for v in value)
    if isinstance(value, (dict,)):
        return json.dumps(value)
    return str(value)


def stack_resolver(aws, stack_name: str, cfn: dict[str, Any], params, region) -> "Resolver":
    stack = aws_call("describe_stacks", describe_stack, aws, stack_name)
    if stack is None:
        raise StackError(f"stack {stack_name} disappeared")
    return Resolver(aws, stack, cfn, stack_resources(aws, stack_name), params, region)


def describe_stream_mapping(
    resolver: "Resolver", lid: str, props: dict[str, Any], fn_lid: str, function: dict[str, Any]
) -> dict[str, Any]:
    """A DynamoDB stream event source mapping, as the local runner emulates it. Lambda's
    defaults where the template says nothing (BatchSize 100, no batching window, retries
    until the record expires: MaximumRetryAttempts -1)."""
    table_lid, _ = getatt_target(props.get("EventSourceArn"))
    filters = ((props.get("FilterCriteria") or {}).get("Filters")) or []
    patterns = []
    for f in filters:
        pattern = resolver.resolve((f or {}).get("Pattern"))
        if not isinstance(pattern, str):
            raise StackError(f"{lid}: a FilterCriteria filter has no Pattern string: {f!r}")
        patterns.append(pattern)
    starting = resolver.resolve(props.get("StartingPosition"))
    if not isinstance(starting, str):
        raise StackError(f"{lid}: a DynamoDB stream event source needs a StartingPosition")
    try:
        stream_arn = resolver.getatt(table_lid, "StreamArn")
    except StackError as exc:
        raise StackError(f"{lid}: the table {table_lid} has no stream in the emulator ({exc})") from exc
    return {
        "name": lid,
        "function": fn_lid,
        "binary": function["binary"],
        "table": table_lid,
        "stream_arn": stream_arn,
        "batch_size": int(resolver.resolve(props.get("BatchSize", 100))),
        "maximum_batching_window_seconds": int(resolver.resolve(props.get("MaximumBatchingWindowInSeconds", 0))),
        "starting_position": starting,
        "maximum_retry_attempts": int(resolver.resolve(props.get("MaximumRetryAttempts", -1))),
        "report_batch_item_failures": "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        "filter_patterns": patterns,
        "enabled": str(resolver.resolve(props.get("Enabled", True))).lower() == "true",
    }


def describe_local(
    resolver: "Resolver",
    stack_name: str,
    cfn: dict[str, Any],
    sam: dict[str, Any],
    region: str,
    roles: dict[str, dict[str, Any]],
    runner: dict[str, str],
):
    resources = resolver.resources
    sam_resources = sam.get("Resources", {})

    functions: dict[str, Any] = {}
    union_env: dict[str, str] = {}
    for lid, res in sorted(cfn["Resources"].items()):
        if res.get("Type") != "AWS::Lambda::Function":
            continue
        props = res.get("Properties") or {}
        env: dict[str, str] = {}
        for var, raw in sorted(((props.get("Environment") or {}).get("Variables") or {}).items()):
            try:
                env[var] = env_string(resolver.resolve(raw))
            except StackError as exc:
                raise StackError(f"{lid}: environment variable {var}: {exc}") from exc
            if var in union_env and union_env[var] != env[var]:
                log(f"warning: {var} differs between functions; 'env' keeps the first value")
            union_env.setdefault(var, env[var])
        meta = res.get("Metadata") or (sam_resources.get(lid) or {}).get("Metadata") or {}
        binary = (meta.get("BuildProperties") or {}).get("Binary")
        if not binary:
            raise StackError(f"{lid}: no Metadata.BuildProperties.Binary in the template")
        role_lid = function_role(lid, props)
        if role_lid not in roles:
            raise StackError(f"{lid}: its role {role_lid!r} is not an AWS::IAM::Role of the template")
        functions[lid] = {
            "binary": binary,
            "role_arn": roles[role_lid]["arn"],
            # The role's statements, resolved: tests derive roles from them.
            "role_policies": roles[role_lid]["policies"],
            "role_managed_policy_arns": roles[role_lid]["managed_policy_arns"],
            "timeout": int(resolver.resolve(props.get("Timeout", 3))),
            "memory_size": int(resolver.resolve(props.get("MemorySize", 128))),
            "env": env,
        }

    mappings = []
    stream_mappings = []
    for lid, res in sorted(cfn["Resources"].items()):
        if res.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        props = res.get("Properties") or {}
        fn = props.get("FunctionName")
        fn_lid = fn.get("Ref") if isinstance(fn, dict) else fn
        if fn_lid not in functions:
            raise StackError(f"{lid}: FunctionName {fn!r} is not a function of this template")
        src = props.get("EventSourceArn")
        source_lid, source_attr = getatt_target(src)
        source_type = resources.get(source_lid, {}).get("ResourceType") if source_lid else None
        if source_type == "AWS::DynamoDB::Table" and source_attr == "StreamArn":
            stream_mappings.append(describe_stream_mapping(resolver, lid, props, fn_lid, functions[fn_lid]))
            continue
        if source_type != "AWS::SQS::Queue":
            log(f"warning: {lid}: event source {src!r} is no SQS queue or table stream of this stack; skipped")
            continue
        queue_lid = source_lid
        mappings.append(
            {
                "name": lid,
                "function": fn_lid,
                "binary": functions[fn_lid]["binary"],
                "queue": queue_lid,
                "queue_url": resolver.getatt(queue_lid, "QueueUrl"),
                "queue_arn": resolver.getatt(queue_lid, "Arn"),
                "batch_size": int(resolver.resolve(props.get("BatchSize", 10))),
                "maximum_batching_window_seconds": int(
                    resolver.resolve(props.get("MaximumBatchingWindowInSeconds", 0))
                ),
                "report_batch_item_failures": "ReportBatchItemFailures"
                in (props.get("FunctionResponseTypes") or []),
                "enabled": str(resolver.resolve(props.get("Enabled", True))).lower() == "true",
                "maximum_concurrency": int(
                    resolver.resolve((props.get("ScalingConfig") or {}).get("MaximumConcurrency", 1000))
                ),
            }
        )

    local_resources = {}
    throttling = describe_throttling(resolver, cfn)
    for lid, r in sorted(resources.items()):
        entry = {"type": r["ResourceType"], "physical_id": r["PhysicalResourceId"]}
        if r["ResourceType"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::KMS::Key"):
            entry["arn"] = resolver.getatt(lid, "Arn")
        if r["ResourceType"] == "AWS::SQS::Queue":
            entry["url"] = resolver.getatt(lid, "QueueUrl")
        local_resources[lid] = entry

    return {
        "stack_name": stack_name,
        "region": region,
        # Emulator credentials of the local runner (never real AWS ones).
        "local_runner": runner,
        "env": union_env,
        "functions": functions,
        "event_source_mappings": mappings,
        "stream_event_source_mappings": stream_mappings,
        "http_api_throttling": throttling,
        "resources": local_resources,
    }


def describe_throttling(resolver: Any, cfn: dict[str, Any]) -> dict[str, Any]:
    """The HTTP API's throttling, as the local gateway applies it: the stage's default route
    settings and each route key's own (`{"default": {"rate", "burst"}, "routes": {key: …}}`);
    none where the template sets none."""

    def limits(settings: Any) -> dict[str, float] | None:
        settings = settings or {}
        if "ThrottlingRateLimit" not in settings and "ThrottlingBurstLimit" not in settings:
            return None
        return {
            "rate": float(resolver.resolve(settings.get("ThrottlingRateLimit", 10000))),
            "burst": int(resolver.resolve(settings.get("ThrottlingBurstLimit", 5000))),
        }

    for res in cfn["Resources"].values():
        if res.get("Type") != "AWS::ApiGatewayV2::Stage":
            continue
        props = res.get("Properties") or {}
        routes = {
            key: found
            for key, settings in sorted((props.get("RouteSettings") or {}).items())
            if (found := limits(settings)) is not None
        }
        return {"default": limits(props.get("DefaultRouteSettings")), "routes": routes}
    return {"default": None, "routes": {}}


# --------------------------------------------------------------------------- commands


def write_json(doc: Any, out: str | None) -> None:
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        log(f"wrote {path}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def parse_params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StackError(f"--parameter expects KEY=VALUE, got {item!r}")
        params[key] = value
    return params


def cmd_translate(args: argparse.Namespace) -> None:
    write_json(translate(Path(args.template), args.region), args.out)


def read_saved(out: str | None) -> dict[str, Any] | None:
    """The local runner's credentials from an earlier `up` (for an emulator enforcing IAM)."""
    if not out:
        return None
    try:
        return json.loads(Path(out).read_text()).get("local_runner")
    except (OSError, ValueError, AttributeError):
        return None


def cmd_up(args: argparse.Namespace) -> None:
    template_path = Path(args.template)
    sam = load_template(template_path)
    cfn = translate(template_path, args.region)
    declared = cfn.get("Parameters") or {}
    params = parse_params(args.parameter)
    unknown = set(params) - set(declared)
    if unknown:
        raise StackError(f"unknown template parameter(s): {', '.join(sorted(unknown))}")
    for name, value in LOCAL_PARAMETER_VALUES.items():
        if name in declared and "Default" not in declared[name]:
            params.setdefault(name, value)
    data = data_only(cfn)
    stack_params = {k: v for k, v in params.items() if k in (data.get("Parameters") or {})}
    for name, decl in (data.get("Parameters") or {}).items():
        if name not in stack_params and "Default" not in decl:
            raise StackError(f"parameter {name} has no default; pass --parameter {name}=VALUE")

    saved = read_saved(args.out)
    credentials = None
    if iam_enforced(args.endpoint, args.region):
        if not saved:
            raise StackError(
                f"the emulator at {args.endpoint} enforces IAM and this script has no credentials "
                "it knows (none saved in --out); restart the emulator"
            )
        credentials = saved
        log("the emulator enforces IAM; signing in as the saved local runner")
    aws = aws_clients(args.endpoint, args.region, credentials)
    ensure_stack(aws, args.stack_name, data, stack_params, args.timeout)
    apply_emulator_fixups(aws, cfn, stack_resources(aws, args.stack_name))
    resolver = stack_resolver(aws, args.stack_name, cfn, params, args.region)
    runner = ensure_local_runner(aws, saved)
    roles = ensure_roles(aws, cfn, resolver, args.stack_name, runner["user_arn"])
    doc = describe_local(resolver, args.stack_name, cfn, sam, args.region, roles, runner)
    verify_alert_sender(aws, doc, args.no_verify_sender)
    if args.enforce_iam:
        enforce_iam(args.endpoint)
    doc["iam_enforced"] = iam_enforced(args.endpoint, args.region)
    write_json(doc, args.out)


def verify_alert_sender(aws, doc: dict[str, Any], skip: bool) -> None:
    """Locally, the alert sender is verified in the emulator's SES, as an admin would verify
    it in the SES console before deploying. `--no-verify-sender` leaves it unverified."""
    sender = (doc.get("env") or {}).get("WEBHOOKS_ALERT_FROM")
    if not sender or skip:
        return
    aws_call("verify the alert sender in SES", aws.ses.verify_email_identity, EmailAddress=sender)
    log(f"verified alert sender {sender} in the emulator's SES")


def main(argv: list[str] | None = None) -> int:
    default_region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    parser = argparse.ArgumentParser(prog="stack.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("translate", help="SAM template -> CloudFormation JSON")
    p.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    p.add_argument("--out", help="write here instead of stdout")
    p.add_argument("--region", default=default_region)
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("up", help="create the data resources in an emulator and describe them")
    p.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"))
    p.add_argument("--stack-name", default="comps-webhooks-local")
    p.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    p.add_argument("--out", help="write the JSON document here instead of stdout")
    p.add_argument("--region", default=default_region)
    p.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                   help="template parameter value (repeatable); defaults are used otherwise")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the stack")
    p.add_argument("--enforce-iam", action="store_true",
                   help="then make moto check every call against the caller's IAM policies")
    p.add_argument("--no-verify-sender", action="store_true",
                   help="leave WEBHOOKS_ALERT_FROM unverified in the emulator's SES")
    p.set_defaults(func=cmd_up)

    args = parser.parse_args(argv)
    try:
        import boto3  # noqa: F401
        import samtranslator  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as exc:
        log(f"error: {exc.name} is not installed; run infra/venv.sh and use .venv/bin/python")
        return 1
    try:
        args.func(args)
    except StackError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
