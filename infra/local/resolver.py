"""CloudFormation's intrinsic functions, for the local stack (infra/local/stack.py).

Two halves: which names a template node refers to, read offline (`references`,
`getatt_target`), and what a node resolves to against the stack created in the emulator
(`Resolver`: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split; any other function is
refused by name).

stack.py imports this module, never the other way round: stack.py runs as a script, and a
module importing it back would load a second copy of it, whose StackError the script's
`except StackError` would not catch. So what the resolver shares with stack.py lives here:
StackError, the error meant for the user, and aws_call, which turns a failed call to the
emulator into one.
"""

from __future__ import annotations

import re
from typing import Any


class StackError(Exception):
    """An error with a message meant for the user; exits non-zero."""


def aws_call(what: str, fn, *args, **kwargs):
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
    from botocore.parsers import ResponseParserError

    try:
        return fn(*args, **kwargs)
    except EndpointConnectionError as exc:
        raise StackError(f"{what}: cannot reach the AWS emulator ({exc})") from exc
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise StackError(f"{what}: {err.get('Code')}: {err.get('Message')}") from exc
    except ResponseParserError as exc:
        # moto answers an HTML 500 page when it crashes on a request.
        raise StackError(f"{what}: the emulator answered with an internal error (see its log)") from exc
    except BotoCoreError as exc:
        raise StackError(f"{what}: {exc}") from exc


# --------------------------------------------------------------------------- references


PSEUDO_PARAMS = {
    "AWS::Region",
    "AWS::AccountId",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::NoValue",
    "AWS::NotificationARNs",
}


def references(node: Any) -> set[str]:
    """Logical ids / parameter names referenced by Ref, Fn::GetAtt and Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                if isinstance(value, list) and value and isinstance(value[0], str):
                    found.add(value[0])
                elif isinstance(value, str):
                    found.add(value.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                local = set(value[1]) if isinstance(value, list) and len(value) > 1 else set()
                if isinstance(text, str):
                    for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                        name = name.split(".", 1)[0]
                        if name not in local:
                            found.add(name)
                if isinstance(value, list) and len(value) > 1:
                    found |= references(value[1])
                continue
            found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def getatt_target(node: Any) -> tuple[str | None, str | None]:
    """(logical id, attribute) of an `Fn::GetAtt`, else (None, None)."""
    if not (isinstance(node, dict) and "Fn::GetAtt" in node):
        return None, None
    ga = node["Fn::GetAtt"]
    if isinstance(ga, str):
        lid, _, attr = ga.partition(".")
        return lid, attr
    if isinstance(ga, list) and len(ga) == 2 and all(isinstance(part, str) for part in ga):
        return ga[0], ga[1]
    return None, None


# --------------------------------------------------------------------------- resolving


class Resolver:
    """Resolves Ref / Fn::GetAtt / Fn::Sub (and a few more) against a live stack."""

    def __init__(self, aws, stack: dict[str, Any], cfn: dict[str, Any], resources, params, region):
        self.aws = aws
        self.cfn = cfn
        self.resources = resources  # logical id -> describe_stack_resources entry
        self.region = region
        self.params: dict[str, Any] = {}
        for name, decl in (cfn.get("Parameters") or {}).items():
            if name in params:
                value: Any = params[name]
            elif "Default" in decl:
                value = decl["Default"]
            else:
                value = None
            if value is not None and decl.get("Type", "").startswith("CommaDelimitedList"):
                value = [v.strip() for v in str(value).split(",")] if not isinstance(value, list) else value
            self.params[name] = value
        self.pseudo = {
            "AWS::Region": region,
            "AWS::Partition": "aws-cn" if region.startswith("cn-") else "aws",
            "AWS::URLSuffix": "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com",
            "AWS::StackName": stack["StackName"],
            "AWS::StackId": stack["StackId"],
            "AWS::AccountId": self._account_id(stack["StackId"]),
        }
        self._attr_cache: dict[tuple[str, str], str] = {}

    @staticmethod
    def _account_id(stack_id: str) -> str:
        parts = stack_id.split(":")
        return parts[4] if len(parts) > 4 and parts[4] else "123456789012"

    def _resource(self, lid: str) -> dict[str, Any]:
        if lid not in self.resources:
            if lid in self.cfn.get("Resources", {}):
                rtype = self.cfn["Resources"][lid].get("Type")
                raise StackError(f"{lid} ({rtype}) is not created locally, so it cannot be resolved")
            raise StackError(f"unknown reference {lid!r}")
        return self.resources[lid]

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            if self.params[name] is None:
                raise StackError(f"parameter {name} has no default; pass --parameter {name}=VALUE")
            return self.params[name]
        res = self._resource(name)
        if res["ResourceType"] == "AWS::SQS::Queue":
            return self.getatt(name, "QueueUrl")
        return res["PhysicalResourceId"]

    def getatt(self, lid: str, attr: str) -> str:
        key = (lid, attr)
        if key in self._attr_cache:
            return self._attr_cache[key]
        res = self._resource(lid)
        rtype, phys = res["ResourceType"], res["PhysicalResourceId"]
        value: str | None = None
        if rtype == "AWS::SQS::Queue":
            if attr == "QueueUrl":
                # The physical id is the AWS-style URL (https://sqs.<region>.amazonaws.com/...);
                # ask the emulator for the URL it hands out, which points at itself.
                name = phys.rstrip("/").rsplit("/", 1)[-1]
                value = aws_call(
                    f"get_queue_url {name}", self.aws.sqs.get_queue_url, QueueName=name
                )["QueueUrl"]
            elif attr in ("Arn", "QueueName"):
                attrs = aws_call(
                    f"get_queue_attributes {phys}",
                    self.aws.sqs.get_queue_attributes,
                    QueueUrl=self.getatt(lid, "QueueUrl"),
                    AttributeNames=["QueueArn"],
                )["Attributes"]
                arn = attrs["QueueArn"]
                value = arn if attr == "Arn" else arn.rsplit(":", 1)[-1]
        elif rtype == "AWS::DynamoDB::Table":
            table = aws_call(
                f"describe_table {phys}", self.aws.dynamodb.describe_table, TableName=phys
            )["Table"]
            value = {"Arn": table.get("TableArn"), "StreamArn": table.get("LatestStreamArn")}.get(attr)
        elif rtype == "AWS::Logs::LogGroup" and attr == "Arn":
            value = f"arn:{self.pseudo['AWS::Partition']}:logs:{self.region}:{self.pseudo['AWS::AccountId']}:log-group:{phys}:*"
        elif rtype == "AWS::KMS::Key":
            meta = aws_call(f"describe_key {phys}", self.aws.kms.describe_key, KeyId=phys)["KeyMetadata"]
            value = {"Arn": meta.get("Arn"), "KeyId": meta.get("KeyId")}.get(attr)
        if value is None:
            raise StackError(f"cannot resolve Fn::GetAtt {lid}.{attr} ({rtype}) locally")
        self._attr_cache[key] = value
        return value

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                lid, attr = (value.split(".", 1) if isinstance(value, str) else value)
                return self.getatt(lid, self.resolve(attr))
            if key == "Fn::Sub":
                return self.sub(value)
            if key == "Fn::Join":
                sep, items = value
                items = self.resolve(items)
                return self.resolve(sep).join(str(self.resolve(i)) for i in items)
            if key == "Fn::Select":
                idx, items = value
                return self.resolve(items)[int(self.resolve(idx))]
            if key == "Fn::Split":
                sep, text = value
                return str(self.resolve(text)).split(self.resolve(sep))
            if key.startswith("Fn::"):
                raise StackError(f"{key} is not supported by the local resolver")
        if isinstance(node, dict):
            return {k: self.resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        return node

    def sub(self, value: Any) -> str:
        if isinstance(value, list):
            text, local = value[0], {k: self.resolve(v) for k, v in (value[1] if len(value) > 1 else {}).items()}
        else:
            text, local = value, {}

        def repl(m: re.Match[str]) -> str:
            expr = m.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in local:
                return str(local[expr])
            if "." in expr and expr.split(".", 1)[0] not in self.params:
                lid, attr = expr.split(".", 1)
                return self.getatt(lid, attr)
            v = self.ref(expr)
            return ",".join(v) if isinstance(v, list) else str(v)

        return re.sub(r"\$\{([^}]+)\}", repl, text)
