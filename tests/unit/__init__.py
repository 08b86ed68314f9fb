"""Tests of pure logic: no broker, no ClickHouse."""

__all__: list[str] = []
