"""Tests of pure logic: no broker, no ClickHouse."""
