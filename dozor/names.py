"""The name of every Kafka topic Dozor owns, assembled here and nowhere else.

A topic's name carries its schema version (``<prefix>.<family>.v<version>``), so a consumer reads
one shape per topic; a new major version is a new topic beside the old one. The prefix and the
consumer group come from settings (``DOZOR_TOPIC_PREFIX``, ``DOZOR_CONSUMER_GROUP``); callers ask
``Settings.topic(family)``, ``Settings.topic_deadletter`` and ``Settings.topic_join_changelog``,
which build on the functions here. faust names a table's changelog itself; ``changelog_topic``
repeats its rule so that ``infra/topics.py`` can create the topic before the first worker starts.
"""

from __future__ import annotations

__all__ = ["JOIN_TABLE", "family_topic", "deadletter_topic", "app_id", "changelog_topic"]

#: The join's faust table (its changelog topic is named after it).
JOIN_TABLE = "incident-join"


def family_topic(prefix: str, family: str, version: int) -> str:
    """``dozor.incidents.v1``: an event family's topic, schema version in the name."""
    return f"{prefix}.{family}.v{version}"


def deadletter_topic(prefix: str) -> str:
    """Where rejected messages go, each with its reason in the headers."""
    return f"{prefix}.deadletter.v1"


def app_id(consumer_group: str, role: str) -> str:
    """A worker role's faust app id: its consumer group, and its changelog topics' prefix."""
    return f"{consumer_group}-{role}"


def changelog_topic(faust_app_id: str, table: str) -> str:
    """A faust table's changelog, named as faust names it: ``<app id>-<table>-changelog``."""
    return f"{faust_app_id}-{table}-changelog"
