"""devtools.dynamodb_local: DynamoDB Local as a child process, and the table made from the template."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.dynamodb_local import DynamoDBLocal, DynamoDBLocalError, ensure_table, find_jar, java_available

pytestmark = pytest.mark.dynamodb

TEMPLATE: dict[str, Any] = {
    "Resources": {
        "LoyaltyTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                    {"AttributeName": "gsi1pk", "AttributeType": "S"},
                    {"AttributeName": "gsi1sk", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "ByNextExpiry",
                        "KeySchema": [
                            {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                            {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                ],
                "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
            },
        }
    }
}


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[DynamoDBLocal]:
    if not java_available():
        pytest.skip("Java 17+ is not installed: DynamoDB Local cannot run")
    with DynamoDBLocal() as instance:
        yield instance


def test_given_npm_ci_was_run_when_looking_for_the_jar_then_it_is_found() -> None:
    assert find_jar().name == "DynamoDBLocal.jar"


def test_given_no_node_modules_when_looking_for_the_jar_then_the_error_says_to_run_npm_ci(
    tmp_path: Path,
) -> None:
    with pytest.raises(DynamoDBLocalError, match="npm ci"):
        find_jar(tmp_path)


def test_given_a_running_instance_when_asked_then_it_answers_on_its_endpoint(dynamodb: DynamoDBLocal) -> None:
    assert dynamodb.endpoint == f"http://127.0.0.1:{dynamodb.port}"
    assert dynamodb.running
    assert "TableNames" in dynamodb.client().list_tables()


def test_given_no_table_when_ensuring_it_then_it_is_created_with_its_index_and_ttl(
    dynamodb: DynamoDBLocal,
) -> None:
    client = dynamodb.client()

    ensure_table(client, "created", TEMPLATE)

    table = client.describe_table(TableName="created")["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["ByNextExpiry"]
    assert table["GlobalSecondaryIndexes"][0]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    ttl = client.describe_time_to_live(TableName="created")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")


def test_given_the_table_exists_when_ensuring_it_again_then_its_items_are_kept(
    dynamodb: DynamoDBLocal,
) -> None:
    client = dynamodb.client()
    ensure_table(client, "kept", TEMPLATE)
    client.put_item(TableName="kept", Item={"pk": {"S": "a"}, "sk": {"S": "b"}})

    ensure_table(client, "kept", TEMPLATE)

    assert client.get_item(TableName="kept", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})["Item"]


def test_given_a_table_from_an_older_template_when_ensuring_it_then_the_new_index_is_added(
    dynamodb: DynamoDBLocal,
) -> None:
    client = dynamodb.client()
    properties = TEMPLATE["Resources"]["LoyaltyTable"]["Properties"]
    older = {
        "Resources": {
            "LoyaltyTable": {
                **TEMPLATE["Resources"]["LoyaltyTable"],
                "Properties": {
                    **properties,
                    "AttributeDefinitions": properties["AttributeDefinitions"][:2],
                    "GlobalSecondaryIndexes": [],
                },
            }
        }
    }
    ensure_table(client, "grown", older)

    ensure_table(client, "grown", TEMPLATE)

    table = client.describe_table(TableName="grown")["Table"]
    assert [index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])] == ["ByNextExpiry"]


def test_given_a_data_folder_when_restarted_then_the_data_is_still_there(tmp_path: Path) -> None:
    if not java_available():
        pytest.skip("Java 17+ is not installed: DynamoDB Local cannot run")
    folder = tmp_path / "data"
    with DynamoDBLocal(db_path=folder) as first:
        ensure_table(first.client(), "persisted", TEMPLATE)
        first.client().put_item(TableName="persisted", Item={"pk": {"S": "a"}, "sk": {"S": "b"}})

    assert not first.running
    with DynamoDBLocal(db_path=folder) as second:
        item = second.client().get_item(TableName="persisted", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
    assert item["Item"] == {"pk": {"S": "a"}, "sk": {"S": "b"}}
    assert (folder / "dynamodb-local.log").is_file()


def test_given_a_port_in_use_when_starting_then_the_error_carries_the_java_output() -> None:
    if not java_available():
        pytest.skip("Java 17+ is not installed: DynamoDB Local cannot run")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(
            DynamoDBLocalError, match=rf"(?s)exited with status .* port {port}.*Failed to bind"
        ):
            DynamoDBLocal(port=port, timeout=30)
