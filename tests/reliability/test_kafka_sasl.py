"""Kafka with SASL (SCRAM-SHA-512) and ACLs, in plaintext and over TLS: credentials reach every
client, nobody else gets in.

The embedded broker runs its secured listener exactly as `dozor kafka start` does with
DOZOR_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT. The worker (faust app and its aiokafka clients), the
kafka-python producer and the topic tool use the settings' credentials; a client without them, a
wrong password, and a camera feed's user writing outside its one topic are all refused.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError

from dozor.infra.kafka import SCRAM, KafkaBroker, default_jar_dir
from dozor.infra.topics import ensure_topics
from dozor.settings import Settings
from tests.helpers.ports import free_port
from tests.helpers.stack import WORKER, Truth, produce, simulated_feed, wait_for_truth

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["SASL_PLAINTEXT", "SASL_SSL"])
def secured(request, tmp_path_factory, clickhouse_url):
    run = uuid.uuid4().hex[:10]
    tmp_path = tmp_path_factory.mktemp("sasl")
    tls = request.param == "SASL_SSL"
    settings = Settings(
        environment="test", state_dir=tmp_path / run, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(), kafka_security_protocol=request.param,
        # The CA the broker makes for its TLS listener (KafkaBroker.tls_dir).
        kafka_ssl_cafile=tmp_path / run / "kafka" / "tls" / "ca.pem" if tls else None,
        kafka_sasl_mechanism=SCRAM, kafka_sasl_username="dozor", kafka_sasl_password="dz-pass-" + run,
        kafka_embedded_admin_password="adm-" + run, clickhouse_url=clickhouse_url,
        clickhouse_database=f"test_{run}", topic_prefix=f"t{run}", consumer_group=f"g{run}",
        topic_partitions=2, worker_web_port=free_port(), batch_max_seconds=0.3,
    )  # fmt: skip
    broker = KafkaBroker(settings)
    broker.start(timeout_s=120)
    try:
        broker.grant_dozor()
        yield settings, broker
    finally:
        broker.stop()


def _producer(
    settings: Settings, user: str | None, password: str | None, cafile: bool = True
) -> KafkaProducer:
    auth: dict[str, object] = {}
    if user:
        auth = {"security_protocol": settings.kafka_security_protocol, "sasl_mechanism": SCRAM,
                "sasl_plain_username": user, "sasl_plain_password": password}  # fmt: skip
    if user and settings.kafka_ssl_cafile and cafile:
        auth["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=5000,
                         max_block_ms=8000, **auth)  # fmt: skip


def test_credentials_reach_every_client_and_acls_hold(secured, start_service):
    settings, broker = secured
    ensure_topics(settings)  # the topic tool, as Dozor's user
    start_service(WORKER, settings, "worker")  # faust and aiokafka, as Dozor's user
    truth = Truth()
    produce(settings, simulated_feed(seed=51, count=600, bad_rate=0.0), truth)  # kafka-python
    stored = wait_for_truth(settings, truth, timeout_s=120)
    assert sum(stored.values()) == truth.rows and stored == truth.counts()

    # Without credentials, or with a wrong password: refused.
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=4000
        ).list_topics()
    with pytest.raises(KafkaError):
        _producer(settings, "dozor", "not-the-password").send(settings.topic("violations"), b"{}").get(
            timeout=10
        )

    if settings.kafka_ssl_cafile:  # TLS: a client that cannot verify the broker does not talk to it
        with pytest.raises(KafkaError):
            unverified = _producer(settings, "dozor", settings.kafka_sasl_password.get_secret_value(), False)
            unverified.send(settings.topic("violations"), b"{}").get(timeout=10)

    # A camera feed's user may write its topic and nothing else.
    broker.create_user("camera-feed", "cam-pass")
    broker.grant("camera-feed", [settings.topic("violations")], ["WRITE", "DESCRIBE"])
    cam = _producer(settings, "camera-feed", "cam-pass")
    cam.send(settings.topic("violations"), b"{}").get(timeout=30)
    with pytest.raises(KafkaError, match="TopicAuthorization|Authorization"):
        cam.send(settings.topic("incidents"), b"{}").get(timeout=30)
    cam.close()


def _acl_tool(broker: KafkaBroker, tmp_path, *args: str, auth: dict[str, str] | None = None):
    """Kafka's own kafka-acls (org.apache.kafka.tools.AclCommand), with short client timeouts so
    that a refused connection ends the tool instead of retrying for a minute."""
    config = tmp_path / f"client-{uuid.uuid4().hex[:6]}.properties"
    lines = {"request.timeout.ms": "4000", "default.api.timeout.ms": "8000", **(auth or {})}
    config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    cmd = broker._java(default_jar_dir(broker.settings), "org.apache.kafka.tools.AclCommand",
                       *args, "--command-config", str(config))  # fmt: skip
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, -1, e.stdout or "", "timed out")


def test_no_listener_takes_an_admin_request_without_credentials(secured, tmp_path):
    settings, broker = secured
    controller = f"127.0.0.1:{settings.kafka_controller_port}"
    cluster = settings.kafka_bootstrap_servers
    grant_all = ["--add", "--allow-principal", "User:intruder", "--operation", "All",
                 "--topic", "*", "--group", "*"]  # fmt: skip
    # Without credentials, against the controller and against the clients' listener: refused.
    for where in (["--bootstrap-controller", controller], ["--bootstrap-server", cluster]):
        for action in (["--list"], grant_all):
            r = _acl_tool(broker, tmp_path, *where, *action)
            assert r.returncode != 0, f"{where} {action} answered without credentials: {r.stdout[-500:]}"
            assert "intruder" not in r.stdout
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=controller, request_timeout_ms=4000).describe_acls(None)

    # Kafka's tool itself works with the super user's credentials (so the refusals above were the
    # listeners', not a wrong command line), and no rule for the intruder was added.
    password = settings.kafka_embedded_admin_password.get_secret_value()
    admin = {
        "security.protocol": settings.kafka_security_protocol, "sasl.mechanism": SCRAM,
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="admin" password="{password}";',
    }  # fmt: skip
    if settings.kafka_ssl_cafile:
        admin |= {"ssl.truststore.type": "PEM", "ssl.truststore.location": str(settings.kafka_ssl_cafile)}
    listed = _acl_tool(broker, tmp_path, "--bootstrap-server", cluster, "--list", auth=admin)
    assert listed.returncode == 0, listed.stderr[-800:]
    assert "User:dozor" in listed.stdout and "intruder" not in listed.stdout
    props = (broker.home / "server.properties").read_text()
    assert "ANONYMOUS" not in props and "CONTROLLER:SASL_" in props
