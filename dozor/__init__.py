"""Dozor: live police patrol activity and traffic violations for Kazakhstan's control centres.

Subpackages: ``dozor.producers`` (event sources), ``dozor.streams`` (faust workers),
``dozor.dashboard`` (Streamlit), ``dozor.infra`` (embedded Kafka and ClickHouse, migrations).
Shared concepts live here: settings, event schemas, topic names (`dozor.names`), city reference
data, errors.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
