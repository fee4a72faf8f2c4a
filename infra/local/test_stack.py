"""Unit tests for the pure parts of infra/local/stack.py and infra/local/resolver.py (no
emulator, no network).

Run from the repository root with
    .venv/bin/python -m unittest infra/local/test_stack.py -v
or, as `make test` does,
    .venv/bin/python -m unittest discover -s infra/local -p 'test_*.py'
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack  # noqa: E402
from resolver import Resolver, getatt_target, references  # noqa: E402
from stack import StackError  # noqa: E402

REGION = "eu-west-2"
ACCOUNT = "000000000042"
STACK = {
    "StackName": "comps-webhooks-local",
    "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/comps-webhooks-local/8d5c-4f1e",
}
QUEUE_AWS_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/deliveries"
QUEUE_LOCAL_URL = f"http://127.0.0.1:4566/{ACCOUNT}/deliveries"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:deliveries"
LOG_GROUP = "/comps-webhooks/comps-webhooks-local/deliver"


# --------------------------------------------------------------------------- fakes


class FakeSqs:
    """Answers the two SQS calls the resolver makes, and records them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def get_queue_url(self, **kwargs):
        self.calls.append(("get_queue_url", kwargs))
        return {"QueueUrl": f"http://127.0.0.1:4566/{ACCOUNT}/{kwargs['QueueName']}"}

    def get_queue_attributes(self, **kwargs):
        self.calls.append(("get_queue_attributes", kwargs))
        name = kwargs["QueueUrl"].rsplit("/", 1)[-1]
        return {"Attributes": {"QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"}}


class FakeAws:
    """Stands in for stack.aws_clients(): only `sqs` exists; any other client is a test failure
    (e.g. a log group's ARN must be built without asking AWS)."""

    def __init__(self) -> None:
        self.sqs = FakeSqs()

    def __getattr__(self, name: str):
        raise AssertionError(f"unexpected AWS client used: {name}")


def make_cfn() -> dict:
    return {
        "Parameters": {
            "Stage": {"Type": "String", "Default": "dev"},
            "Retention": {"Type": "Number", "Default": 30},
            "Audiences": {"Type": "CommaDelimitedList", "Default": "web, mobile ,cli"},
            "AlertEmails": {"Type": "CommaDelimitedList"},
            "AlertFrom": {"Type": "String"},
        },
        "Resources": {
            "DeliverLogGroup": {"Type": "AWS::Logs::LogGroup"},
            "DeliveriesQueue": {"Type": "AWS::SQS::Queue"},
            "DeliverFunction": {"Type": "AWS::Lambda::Function"},
        },
    }


def make_resources() -> dict:
    return {
        "DeliverLogGroup": {"ResourceType": "AWS::Logs::LogGroup", "PhysicalResourceId": LOG_GROUP},
        "DeliveriesQueue": {"ResourceType": "AWS::SQS::Queue", "PhysicalResourceId": QUEUE_AWS_URL},
    }


def make_resolver(params=None, region=REGION, stack_doc=None, aws=None) -> Resolver:
    given = {"AlertEmails": "a@x.test, b@x.test"} if params is None else params
    return Resolver(
        aws if aws is not None else FakeAws(),
        stack_doc or STACK,
        make_cfn(),
        make_resources(),
        given,
        region,
    )


# --------------------------------------------------------------------------- references


class ReferencesTest(unittest.TestCase):
    def test_ref_and_getatt_forms(self):
        node = {
            "A": {"Ref": "Stage"},
            "B": [{"Fn::GetAtt": ["Queue", "Arn"]}, {"Fn::GetAtt": "Table.StreamArn"}],
            "C": {"Nested": {"Deeper": [{"Ref": "AWS::Region"}]}},
        }
        self.assertEqual(references(node), {"Stage", "Queue", "Table", "AWS::Region"})

    def test_non_string_ref_is_ignored(self):
        self.assertEqual(references({"Ref": {"Fn::Sub": "x"}}), set())
        self.assertEqual(references(["plain", 3, None, {"Key": "Ref"}]), set())

    def test_sub_string(self):
        node = {"Fn::Sub": "arn:${AWS::Partition}:x:${Key.Arn}/${Stage}/${!Literal}"}
        self.assertEqual(references(node), {"AWS::Partition", "Key", "Stage"})

    def test_sub_with_variable_map(self):
        node = {
            "Fn::Sub": [
                "${Local}-${Stage}-${Other.Name}",
                {"Local": {"Fn::GetAtt": ["Table", "Arn"]}, "Unused": {"Ref": "Retention"}},
            ]
        }
        # Local variables are not references; what the map itself references is.
        self.assertEqual(references(node), {"Stage", "Other", "Table", "Retention"})


# --------------------------------------------------------------------------- json_text_with_intrinsics


class JsonTextWithIntrinsicsTest(unittest.TestCase):
    def test_plain_document_is_compact_json(self):
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:*"], "Resource": "*"}]}
        text = stack.json_text_with_intrinsics(doc)
        self.assertIsInstance(text, str)
        self.assertEqual(text, json.dumps(doc, separators=(",", ":")))
        self.assertEqual(json.loads(text), doc)

    def test_intrinsics_are_spliced_into_a_join(self):
        root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
        table = {"Fn::GetAtt": ["Table", "Arn"]}
        doc = {
            "Statement": [
                {"Principal": {"AWS": root}, "Resource": table, "Sid": "@ not an intrinsic"},
            ],
            "Two": {"A": 1, "B": 2},  # a dict of two keys is data, not an intrinsic
        }
        original = copy.deepcopy(doc)
        out = stack.json_text_with_intrinsics(doc)
        self.assertEqual(list(out), ["Fn::Join"])
        sep, parts = out["Fn::Join"]
        self.assertEqual(sep, "")
        self.assertEqual([p for p in parts if isinstance(p, dict)], [root, table])
        self.assertNotIn("", parts)
        # Putting values in place of the intrinsics gives the document back, as JSON.
        values = {id(root): "arn:aws:iam::1:root", id(table): "arn:aws:dynamodb:r:1:table/t"}
        text = "".join(values[id(p)] if isinstance(p, dict) else p for p in parts)
        expected = copy.deepcopy(original)
        expected["Statement"][0]["Principal"]["AWS"] = "arn:aws:iam::1:root"
        expected["Statement"][0]["Resource"] = "arn:aws:dynamodb:r:1:table/t"
        self.assertEqual(json.loads(text), expected)
        self.assertEqual(doc, original)  # the input is not modified

    def test_ref_intrinsic_and_text_at_the_edges(self):
        out = stack.json_text_with_intrinsics({"Ref": "Stage"})
        self.assertEqual(out, {"Fn::Join": ["", ['"', {"Ref": "Stage"}, '"']]})

    def test_join_resolves_to_the_json_text(self):
        doc = {"Statement": [{"Resource": {"Fn::GetAtt": ["DeliverLogGroup", "Arn"]}, "Env": {"Ref": "Stage"}}]}
        text = make_resolver().resolve(stack.json_text_with_intrinsics(doc))
        self.assertEqual(
            json.loads(text),
            {
                "Statement": [
                    {
                        "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:*",
                        "Env": "dev",
                    }
                ]
            },
        )


# --------------------------------------------------------------------------- data_only


def data_template() -> dict:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "ignored",
        "Parameters": {
            "Stage": {"Type": "String", "Default": "dev"},
            "Env": {"Type": "String", "Default": "local"},
            "Alarm": {"Type": "String", "Default": "no"},
            "IfParam": {"Type": "String", "Default": "x"},
            "FnOnly": {"Type": "String", "Default": "y"},
            "Unused": {"Type": "String", "Default": "z"},
        },
        "Mappings": {"M": {"k": {"v": "1"}}},
        "Conditions": {
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "HasAlarm": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "Loud"}]},
            "Loud": {"Fn::Equals": [{"Ref": "Alarm"}, "yes"]},
            "InIf": {"Fn::Equals": [{"Ref": "IfParam"}, "x"]},
            "InnerIf": {"Fn::Equals": ["a", "a"]},
            "FnCond": {"Fn::Equals": [{"Ref": "FnOnly"}, "y"]},
            "UnusedCond": {"Fn::Equals": [{"Ref": "Unused"}, "z"]},
        },
        "Resources": {
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Condition": "IsProd",
                "Metadata": {"Note": "dropped from the copy"},
                "Properties": {"TableName": {"Fn::Sub": "webhooks-${Stage}"}},
            },
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "DelaySeconds": {"Fn::If": ["InIf", {"Fn::If": ["InnerIf", 5, 6]}, {"Ref": "AWS::NoValue"}]},
                },
            },
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
                                "Action": "kms:*",
                                "Resource": "*",
                            }
                        ],
                    }
                },
            },
            "KeyAlias": {
                "Type": "AWS::KMS::Alias",
                "Properties": {"AliasName": "alias/webhooks", "TargetKeyId": {"Ref": "Key"}},
            },
            "Identity": {"Type": "AWS::SES::EmailIdentity", "Properties": {"EmailIdentity": "a@x.test"}},
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Condition": "FnCond",
                "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Description": {"Ref": "FnOnly"}},
            },
            "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
            "QueuePolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [{"Ref": "Queue"}],
                    "PolicyDocument": {"Statement": [{"Principal": {"AWS": {"Fn::GetAtt": "Function.Arn"}}}]},
                },
            },
            "FunctionLogs": {"Type": "AWS::Logs::LogGroup", "DependsOn": "Function"},
            "AfterLogs": {"Type": "AWS::Logs::LogGroup", "DependsOn": ["Queue", "FunctionLogs"]},
        },
        "Outputs": {
            "TableName": {"Value": {"Ref": "Table"}, "Condition": "HasAlarm"},
            "StageOut": {"Value": {"Ref": "Stage"}},
            "RegionOut": {"Value": {"Fn::Sub": "${AWS::Region}"}},
            "FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}},
            "PolicyOut": {"Value": {"Ref": "QueuePolicy"}},
        },
    }


class DataOnlyTest(unittest.TestCase):
    def run_data_only(self, cfn):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            out = stack.data_only(cfn)
        return out, err.getvalue()

    def test_keeps_data_resources_only(self):
        out, log = self.run_data_only(data_template())
        self.assertEqual(sorted(out["Resources"]), ["Identity", "Key", "KeyAlias", "Queue", "Table"])
        self.assertEqual(out["AWSTemplateFormatVersion"], "2010-09-09")
        self.assertNotIn("Transform", out)
        self.assertEqual(out["Mappings"], {"M": {"k": {"v": "1"}}})
        # A data resource referencing a dropped one is dropped, transitively and via DependsOn.
        self.assertIn("not creating QueuePolicy: it references Function", log)
        self.assertIn("not creating FunctionLogs: it references Function", log)
        self.assertIn("not creating AfterLogs: it references FunctionLogs", log)

    def test_copies_are_cleaned_and_the_input_is_untouched(self):
        cfn = data_template()
        before = copy.deepcopy(cfn)
        out, _ = self.run_data_only(cfn)
        self.assertEqual(cfn, before)
        self.assertNotIn("Metadata", out["Resources"]["Table"])
        self.assertEqual(out["Resources"]["Table"]["Condition"], "IsProd")
        self.assertEqual(out["Resources"]["KeyAlias"], before["Resources"]["KeyAlias"])

    def test_key_policy_becomes_json_text(self):
        out, _ = self.run_data_only(data_template())
        policy = out["Resources"]["Key"]["Properties"]["KeyPolicy"]
        self.assertEqual(policy, stack.json_text_with_intrinsics(data_template()["Resources"]["Key"]["Properties"]["KeyPolicy"]))
        self.assertIn("Fn::Join", policy)

    def test_keeps_only_used_outputs_conditions_parameters(self):
        out, _ = self.run_data_only(data_template())
        self.assertEqual(sorted(out["Outputs"]), ["RegionOut", "StageOut", "TableName"])
        # IsProd (a kept resource's), HasAlarm (a kept output's, which needs IsProd and Loud),
        # InIf and InnerIf (an Fn::If in a kept resource, and one in its branch).
        self.assertEqual(sorted(out["Conditions"]), ["HasAlarm", "InIf", "InnerIf", "IsProd", "Loud"])
        # Stage (Fn::Sub), Env/Alarm/IfParam (through the kept conditions); not FnOnly, Unused.
        self.assertEqual(sorted(out["Parameters"]), ["Alarm", "Env", "IfParam", "Stage"])
        self.assertEqual(out["Parameters"]["Stage"], {"Type": "String", "Default": "dev"})

    def test_nothing_optional_when_unused(self):
        out, _ = self.run_data_only(
            {
                "Parameters": {"P": {"Type": "String"}},
                "Conditions": {"C": {"Fn::Equals": ["a", "b"]}},
                "Resources": {"Q": {"Type": "AWS::SQS::Queue"}, "F": {"Type": "AWS::Lambda::Function"}},
            }
        )
        self.assertEqual(out["Resources"], {"Q": {"Type": "AWS::SQS::Queue"}})
        for key in ("Parameters", "Conditions", "Outputs", "Mappings"):
            self.assertNotIn(key, out)

    def test_is_data_type(self):
        for rtype in stack.DATA_RESOURCE_TYPES + ("AWS::SES::ConfigurationSet",):
            self.assertTrue(stack.is_data_type(rtype), rtype)
        for rtype in ("AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping", "AWS::IAM::Role", ""):
            self.assertFalse(stack.is_data_type(rtype), rtype)


# --------------------------------------------------------------------------- Resolver


class ResolverRefTest(unittest.TestCase):
    def test_parameter_default_and_given(self):
        r = make_resolver()
        self.assertEqual(r.ref("Stage"), "dev")
        self.assertEqual(r.resolve({"Ref": "Retention"}), 30)
        r = make_resolver({"Stage": "prod", "AlertFrom": "alerts@x.test"})
        self.assertEqual(r.resolve({"Ref": "Stage"}), "prod")
        self.assertEqual(r.resolve({"Ref": "AlertFrom"}), "alerts@x.test")

    def test_comma_delimited_list(self):
        r = make_resolver()
        self.assertEqual(r.resolve({"Ref": "Audiences"}), ["web", "mobile", "cli"])
        self.assertEqual(r.resolve({"Ref": "AlertEmails"}), ["a@x.test", "b@x.test"])
        r = make_resolver({"Audiences": "only"})
        self.assertEqual(r.ref("Audiences"), ["only"])

    def test_pseudo_parameters(self):
        r = make_resolver()
        self.assertEqual(r.resolve({"Ref": "AWS::Region"}), REGION)
        self.assertEqual(r.resolve({"Ref": "AWS::AccountId"}), ACCOUNT)
        self.assertEqual(r.resolve({"Ref": "AWS::Partition"}), "aws")
        self.assertEqual(r.resolve({"Ref": "AWS::URLSuffix"}), "amazonaws.com")
        self.assertEqual(r.resolve({"Ref": "AWS::StackName"}), STACK["StackName"])
        self.assertEqual(r.resolve({"Ref": "AWS::StackId"}), STACK["StackId"])

    def test_pseudo_parameters_in_china_and_without_account(self):
        r = make_resolver(
            region="cn-north-1",
            stack_doc={"StackName": "s", "StackId": "arn:aws-cn:cloudformation:cn-north-1::stack/s/1"},
        )
        self.assertEqual(r.ref("AWS::Partition"), "aws-cn")
        self.assertEqual(r.ref("AWS::URLSuffix"), "amazonaws.com.cn")
        self.assertEqual(r.ref("AWS::AccountId"), "123456789012")

    def test_parameter_without_value_is_named(self):
        r = make_resolver()
        with self.assertRaises(StackError) as ctx:
            r.resolve({"Ref": "AlertFrom"})
        self.assertIn("AlertFrom", str(ctx.exception))
        self.assertIn("no default", str(ctx.exception))
        with self.assertRaisesRegex(StackError, r"parameter AlertFrom has no default"):
            r.sub("from ${AlertFrom}")

    def test_resources(self):
        aws = FakeAws()
        r = make_resolver(aws=aws)
        self.assertEqual(r.ref("DeliverLogGroup"), LOG_GROUP)
        # A queue's Ref is its URL, the one the emulator hands out.
        self.assertEqual(r.ref("DeliveriesQueue"), QUEUE_LOCAL_URL)
        self.assertEqual(aws.sqs.calls, [("get_queue_url", {"QueueName": "deliveries"})])
        with self.assertRaisesRegex(StackError, r"DeliverFunction \(AWS::Lambda::Function\) is not created locally"):
            r.ref("DeliverFunction")
        with self.assertRaisesRegex(StackError, r"unknown reference 'Nope'"):
            r.ref("Nope")


class ResolverGetAttTest(unittest.TestCase):
    def test_log_group_arn_without_aws_call(self):
        r = make_resolver()  # FakeAws fails the test on any client but sqs
        expected = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:*"
        self.assertEqual(r.getatt("DeliverLogGroup", "Arn"), expected)
        self.assertEqual(r.resolve({"Fn::GetAtt": ["DeliverLogGroup", "Arn"]}), expected)
        self.assertEqual(r.resolve({"Fn::GetAtt": "DeliverLogGroup.Arn"}), expected)
        self.assertEqual(r.aws.sqs.calls, [])

    def test_queue_attributes_are_asked_once(self):
        aws = FakeAws()
        r = make_resolver(aws=aws)
        self.assertEqual(r.getatt("DeliveriesQueue", "Arn"), QUEUE_ARN)
        self.assertEqual(r.getatt("DeliveriesQueue", "QueueName"), "deliveries")
        self.assertEqual(r.getatt("DeliveriesQueue", "Arn"), QUEUE_ARN)
        self.assertEqual(r.getatt("DeliveriesQueue", "QueueUrl"), QUEUE_LOCAL_URL)
        names = [name for name, _ in aws.sqs.calls]
        self.assertEqual(names.count("get_queue_url"), 1)
        self.assertEqual(names.count("get_queue_attributes"), 2)  # Arn and QueueName, each once
        self.assertEqual(aws.sqs.calls[1][1], {"QueueUrl": QUEUE_LOCAL_URL, "AttributeNames": ["QueueArn"]})

    def test_unknown_attribute(self):
        r = make_resolver()
        with self.assertRaisesRegex(StackError, r"cannot resolve Fn::GetAtt DeliverLogGroup.Name"):
            r.getatt("DeliverLogGroup", "Name")


class ResolverSubTest(unittest.TestCase):
    def test_pseudo_parameter(self):
        r = make_resolver()
        self.assertEqual(r.resolve({"Fn::Sub": "region ${AWS::Region}!"}), f"region {REGION}!")
        self.assertEqual(
            r.sub("https://api.execute-api.${AWS::Region}.${AWS::URLSuffix}"),
            f"https://api.execute-api.{REGION}.amazonaws.com",
        )

    def test_variable_map(self):
        r = make_resolver()
        value = r.resolve(
            {"Fn::Sub": ["${Greeting}, ${Stage} (${Where})", {"Greeting": "hello", "Where": {"Ref": "AWS::Region"}}]}
        )
        self.assertEqual(value, f"hello, dev ({REGION})")
        # A local variable hides a parameter of the same name.
        self.assertEqual(r.sub(["${Stage}", {"Stage": "mine"}]), "mine")
        self.assertEqual(r.sub(["${Stage}"]), "dev")

    def test_getatt_of_log_group(self):
        r = make_resolver()  # no AWS call is allowed for a log group's ARN
        self.assertEqual(
            r.resolve({"Fn::Sub": "${DeliverLogGroup.Arn}"}),
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:*",
        )

    def test_literal_and_list_parameter(self):
        r = make_resolver()
        self.assertEqual(r.sub("${!Literal} and ${Stage}"), "${Literal} and dev")
        self.assertEqual(r.sub("to=${AlertEmails}"), "to=a@x.test,b@x.test")
        self.assertEqual(r.sub("no placeholders"), "no placeholders")

    def test_queue_url_and_arn(self):
        r = make_resolver()
        self.assertEqual(r.sub("${DeliveriesQueue} ${DeliveriesQueue.Arn}"), f"{QUEUE_LOCAL_URL} {QUEUE_ARN}")


class ResolverFunctionsTest(unittest.TestCase):
    def test_join(self):
        r = make_resolver()
        self.assertEqual(
            r.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, {"Ref": "AWS::Region"}, 7]]}),
            f"a-dev-{REGION}-7",
        )
        # As template.yaml does for WEBHOOKS_ALERT_EMAILS: a join over a list parameter.
        self.assertEqual(r.resolve({"Fn::Join": [",", {"Ref": "AlertEmails"}]}), "a@x.test,b@x.test")
        self.assertEqual(r.resolve({"Fn::Join": ["", []]}), "")

    def test_select(self):
        r = make_resolver()
        self.assertEqual(r.resolve({"Fn::Select": ["1", {"Ref": "Audiences"}]}), "mobile")
        self.assertEqual(r.resolve({"Fn::Select": [0, ["x", "y"]]}), "x")

    def test_split(self):
        r = make_resolver()
        self.assertEqual(r.resolve({"Fn::Split": [",", "a,b,,c"]}), ["a", "b", "", "c"])
        self.assertEqual(
            r.resolve({"Fn::Select": [5, {"Fn::Split": [":", {"Fn::GetAtt": ["DeliveriesQueue", "Arn"]}]}]}),
            "deliveries",
        )

    def test_nested_structures_are_resolved(self):
        r = make_resolver()
        policy = {
            "Statement": [
                {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": {"Fn::GetAtt": ["DeliverLogGroup", "Arn"]}}
            ],
            "Two": {"Ref": "Stage", "Other": 1},  # two keys: data, not an intrinsic
        }
        self.assertEqual(
            r.resolve(policy),
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["logs:PutLogEvents"],
                        "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:*",
                    }
                ],
                "Two": {"Ref": "Stage", "Other": 1},
            },
        )
        self.assertEqual(r.resolve(5), 5)
        self.assertEqual(r.resolve("text"), "text")

    def test_unsupported_function(self):
        r = make_resolver()
        for node in (
            {"Fn::If": ["Cond", "a", "b"]},
            {"Fn::ImportValue": "exported"},
            {"Fn::Base64": "x"},
            {"Outer": [{"Fn::FindInMap": ["M", "k", "v"]}]},
        ):
            with self.subTest(node=node), self.assertRaisesRegex(StackError, r"Fn::\w+ is not supported"):
                r.resolve(node)


# --------------------------------------------------------------------------- table streams

TABLE = "comps-webhooks-local-EventsTable-1A2B"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
STREAM_ARN = f"{TABLE_ARN}/stream/2025-01-01T00:00:00.000000"


class FakeDynamoDb:
    """A table, with or without a stream; records describe_table and update_table calls."""

    def __init__(self, view_type: str | None = None) -> None:
        self.view_type = view_type
        self.calls: list[tuple[str, dict]] = []

    def describe_table(self, **kwargs):
        self.calls.append(("describe_table", kwargs))
        table = {"TableName": kwargs["TableName"], "TableArn": TABLE_ARN}
        if self.view_type:
            table["LatestStreamArn"] = STREAM_ARN
            table["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.view_type}
        return {"Table": table}

    def update_table(self, **kwargs):
        self.calls.append(("update_table", kwargs))
        self.view_type = kwargs["StreamSpecification"]["StreamViewType"]
        return {}


class FakeAwsWithTable(FakeAws):
    def __init__(self, view_type: str | None = "NEW_IMAGE") -> None:
        super().__init__()
        self.dynamodb = FakeDynamoDb(view_type)


def stream_cfn(mapping_props: dict) -> dict:
    """A translated template: deliver fed by a queue and by the events table's stream."""
    return {
        "Resources": {
            "EventsTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {"StreamSpecification": {"StreamViewType": "NEW_IMAGE"}},
            },
            "DeliveriesQueue": {"Type": "AWS::SQS::Queue"},
            "DeliverFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Role": {"Fn::GetAtt": ["DeliverFunctionRole", "Arn"]}, "Timeout": 30},
                "Metadata": {"BuildProperties": {"Binary": "deliver"}},
            },
            "DeliverFunctionDeliveries": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "BatchSize": 10,
                    "EventSourceArn": {"Fn::GetAtt": ["DeliveriesQueue", "Arn"]},
                    "FunctionName": {"Ref": "DeliverFunction"},
                },
            },
            "DeliverFunctionNewEvents": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["EventsTable", "StreamArn"]},
                    "FunctionName": {"Ref": "DeliverFunction"},
                    **mapping_props,
                },
            },
        }
    }


def describe_streams(mapping_props: dict, aws=None) -> dict:
    cfn = stream_cfn(mapping_props)
    resources = {
        "EventsTable": {"ResourceType": "AWS::DynamoDB::Table", "PhysicalResourceId": TABLE},
        "DeliveriesQueue": {"ResourceType": "AWS::SQS::Queue", "PhysicalResourceId": QUEUE_AWS_URL},
    }
    resolver = Resolver(aws or FakeAwsWithTable(), STACK, cfn, resources, {}, REGION)
    roles = {
        "DeliverFunctionRole": {
            "arn": f"arn:aws:iam::{ACCOUNT}:role/deliver",
            "policies": {},
            "managed_policy_arns": [],
        }
    }
    return stack.describe_local(resolver, STACK["StackName"], cfn, {}, REGION, roles, {"user_arn": "u"})


class StreamEventSourceMappingTest(unittest.TestCase):
    def test_as_the_template_declares_it(self):
        doc = describe_streams(
            {
                "StartingPosition": "TRIM_HORIZON",
                "BatchSize": 100,
                "MaximumBatchingWindowInSeconds": 1,
                "MaximumRetryAttempts": -1,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "FilterCriteria": {
                    "Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}, {"Pattern": '{"eventName": ["MODIFY"]}'}]
                },
            }
        )
        self.assertEqual(
            doc["stream_event_source_mappings"],
            [
                {
                    "name": "DeliverFunctionNewEvents",
                    "function": "DeliverFunction",
                    "binary": "deliver",
                    "table": "EventsTable",
                    "stream_arn": STREAM_ARN,
                    "batch_size": 100,
                    "maximum_batching_window_seconds": 1,
                    "starting_position": "TRIM_HORIZON",
                    "maximum_retry_attempts": -1,
                    "report_batch_item_failures": True,
                    "filter_patterns": ['{"eventName": ["INSERT"]}', '{"eventName": ["MODIFY"]}'],
                    "enabled": True,
                }
            ],
        )
        # The queue's mapping is described as before, and only there.
        self.assertEqual([m["name"] for m in doc["event_source_mappings"]], ["DeliverFunctionDeliveries"])

    def test_lambda_defaults(self):
        (mapping,) = describe_streams({"StartingPosition": "LATEST", "Enabled": False})["stream_event_source_mappings"]
        self.assertEqual(mapping["batch_size"], 100)
        self.assertEqual(mapping["maximum_batching_window_seconds"], 0)
        self.assertEqual(mapping["maximum_retry_attempts"], -1)
        self.assertEqual(mapping["starting_position"], "LATEST")
        self.assertFalse(mapping["report_batch_item_failures"])
        self.assertEqual(mapping["filter_patterns"], [])
        self.assertFalse(mapping["enabled"])

    def test_a_table_without_stream_is_an_error(self):
        with self.assertRaisesRegex(StackError, r"DeliverFunctionNewEvents: the table EventsTable has no stream"):
            describe_streams({"StartingPosition": "TRIM_HORIZON"}, aws=FakeAwsWithTable(view_type=None))

    def test_starting_position_is_required(self):
        with self.assertRaisesRegex(StackError, r"needs a StartingPosition"):
            describe_streams({})

    def test_getatt_target(self):
        self.assertEqual(getatt_target({"Fn::GetAtt": ["T", "StreamArn"]}), ("T", "StreamArn"))
        self.assertEqual(getatt_target({"Fn::GetAtt": "Q.Arn"}), ("Q", "Arn"))
        self.assertEqual(getatt_target({"Ref": "Q"}), (None, None))
        self.assertEqual(getatt_target("arn:aws:sqs:r:1:q"), (None, None))


class EnsureTableStreamTest(unittest.TestCase):
    def run_quietly(self, aws, spec):
        with contextlib.redirect_stderr(io.StringIO()):
            stack.ensure_table_stream(aws, TABLE, spec)

    def test_enables_a_missing_stream(self):
        aws = FakeAwsWithTable(view_type=None)
        self.run_quietly(aws, {"StreamViewType": "NEW_IMAGE"})
        self.assertEqual(
            aws.dynamodb.calls[-1],
            (
                "update_table",
                {"TableName": TABLE, "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}},
            ),
        )

    def test_leaves_the_same_stream_alone(self):
        aws = FakeAwsWithTable(view_type="NEW_IMAGE")
        self.run_quietly(aws, {"StreamViewType": "NEW_IMAGE"})
        self.assertEqual([name for name, _ in aws.dynamodb.calls], ["describe_table"])

    def test_another_view_type_is_an_error(self):
        aws = FakeAwsWithTable(view_type="KEYS_ONLY")
        with self.assertRaisesRegex(StackError, r"has a KEYS_ONLY stream and the template wants NEW_IMAGE"):
            self.run_quietly(aws, {"StreamViewType": "NEW_IMAGE"})

    def test_no_stream_wanted_asks_nothing(self):
        aws = FakeAws()  # any DynamoDB call fails the test
        self.run_quietly(aws, None)
        self.run_quietly(aws, {"StreamEnabled": False})


# --------------------------------------------------------------------------- small helpers


class HelpersTest(unittest.TestCase):
    def test_local_trust_policy(self):
        arn = f"arn:aws:iam::{ACCOUNT}:user/comps-webhooks-local-runner"
        policy = stack.local_trust_policy(arn)
        self.assertEqual(
            policy,
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "sts:AssumeRole"}],
            },
        )
        self.assertEqual(json.loads(json.dumps(policy)), policy)

    def test_function_role(self):
        self.assertEqual(stack.function_role("F", {"Role": {"Fn::GetAtt": ["DeliverRole", "Arn"]}}), "DeliverRole")
        self.assertEqual(stack.function_role("F", {"Role": {"Fn::GetAtt": "AlerterRole.Arn"}}), "AlerterRole")
        self.assertIsNone(stack.function_role("F", {"Role": "arn:aws:iam::1:role/x"}))
        self.assertIsNone(stack.function_role("F", {"Role": {"Ref": "RoleArnParam"}}))
        self.assertIsNone(stack.function_role("F", {}))

    def test_parse_params(self):
        self.assertEqual(stack.parse_params([]), {})
        self.assertEqual(
            stack.parse_params(["A=1", "B=x=y", "C=", "A=2"]),
            {"A": "2", "B": "x=y", "C": ""},
        )
        for bad in ("novalue", "=value", ""):
            with self.subTest(bad=bad), self.assertRaises(StackError) as ctx:
                stack.parse_params(["OK=1", bad])
            self.assertIn(f"got {bad!r}", str(ctx.exception))

    def test_env_string(self):
        self.assertEqual(stack.env_string(True), "true")
        self.assertEqual(stack.env_string(False), "false")
        self.assertEqual(stack.env_string(["a@x.test", "b@x.test"]), "a@x.test,b@x.test")
        self.assertEqual(stack.env_string(["a", True, 3, ["b", "c"]]), "a,true,3,b,c")
        self.assertEqual(json.loads(stack.env_string({"k": [1, "v"]})), {"k": [1, "v"]})
        self.assertEqual(stack.env_string(30), "30")
        self.assertEqual(stack.env_string("plain"), "plain")
        self.assertEqual(stack.env_string(""), "")


if __name__ == "__main__":
    unittest.main()


# --------------------------------------------------------------------------- throttling


class ThrottlingTest(unittest.TestCase):
    def cfn(self, stage_props):
        doc = make_cfn()
        doc["Parameters"]["PublicRate"] = {"Type": "Number", "Default": 20}
        doc["Resources"]["Stage"] = {"Type": "AWS::ApiGatewayV2::Stage", "Properties": stage_props}
        return doc

    def test_default_and_route_settings_are_resolved(self):
        cfn = self.cfn(
            {
                "DefaultRouteSettings": {"ThrottlingRateLimit": 1000, "ThrottlingBurstLimit": 2000},
                "RouteSettings": {
                    "GET /api/v1/openapi.json": {
                        "ThrottlingRateLimit": {"Ref": "PublicRate"},
                        "ThrottlingBurstLimit": 40,
                    },
                    "GET /other": {"DetailedMetricsEnabled": True},
                },
            }
        )
        resolver = Resolver(FakeAws(), STACK, cfn, make_resources(), {}, REGION)
        self.assertEqual(
            stack.describe_throttling(resolver, cfn),
            {
                "default": {"rate": 1000.0, "burst": 2000},
                "routes": {"GET /api/v1/openapi.json": {"rate": 20.0, "burst": 40}},
            },
        )

    def test_no_stage_or_no_settings_throttle_nothing(self):
        cfn = make_cfn()
        resolver = Resolver(FakeAws(), STACK, cfn, make_resources(), {}, REGION)
        self.assertEqual(stack.describe_throttling(resolver, cfn), {"default": None, "routes": {}})
        cfn = self.cfn({})
        self.assertEqual(stack.describe_throttling(resolver, cfn), {"default": None, "routes": {}})
