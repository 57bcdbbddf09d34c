"""DynamoDB access: items, keys, reads and the points transaction (see docs/design.md)."""
