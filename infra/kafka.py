"""The embedded Apache Kafka broker: official jars from Maven Central, one KRaft node on loopback.

The version is pinned once, in ``infra/kafka/pom.xml``; Maven copies that release's jars into a
cache directory the first time they are needed. The broker runs on the machine's Java with its data
and logs under the project state directory, formats its storage on first start, and stops on
SIGTERM (Kafka's own shutdown hook flushes and closes the log cleanly).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from dozor.errors import DependencyMissing, DozorError
from dozor.infra.procs import die_with_parent, ensure_port_free, port_open, stop_process, wait_until
from dozor.settings import Settings

__all__ = ["KafkaBroker", "kafka_version", "fetch_jars", "java_binary"]

log = logging.getLogger("dozor.infra.kafka")

POM = Path(__file__).with_name("kafka") / "pom.xml"


def kafka_version() -> str:
    """The pinned Kafka version, read from the POM so it is written in one place only."""
    m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not m:
        raise DozorError(f"{POM} does not pin kafka.version")
    return m.group(1)


def default_jar_dir(settings: Settings) -> Path:
    """Jars are shared by every checkout on the machine: they are large and never change."""
    if settings.kafka_jar_dir:
        return settings.kafka_jar_dir
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "dozor" / f"kafka-{kafka_version()}"


def java_binary() -> str:
    """The Java launcher, from JAVA_HOME or PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise DependencyMissing(
            "java",
            "the embedded Kafka broker needs Java 17 or newer; install it with "
            "`sudo apt-get install openjdk-17-jre-headless` (or set JAVA_HOME)",
        )
    return found


def fetch_jars(dest: Path) -> Path:
    """Copy the pinned Kafka release and its dependencies from Maven Central into ``dest``.

    A ``.complete`` marker makes an interrupted download retry instead of starting a broken broker.
    """
    marker = dest / ".complete"
    if marker.exists():
        return dest
    mvn = shutil.which("mvn")
    if not mvn:
        raise DependencyMissing(
            "mvn",
            "Maven fetches the Kafka jars from Maven Central; install it with `sudo apt-get install maven`",
        )
    dest.mkdir(parents=True, exist_ok=True)
    log.info("fetching Apache Kafka %s jars into %s (once)", kafka_version(), dest)
    cmd = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={dest}", "-DincludeScope=runtime",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DozorError(
            f"Maven could not fetch the Kafka jars (exit {proc.returncode}): "
            f"{(proc.stdout + proc.stderr).strip()[-800:]}"
        )
    if not any(dest.glob("kafka_2.13-*.jar")):
        raise DozorError(f"Maven finished but no kafka_2.13 jar is in {dest}")
    marker.write_text(kafka_version())
    return dest


_LOG4J2 = """\
Configuration:
  name: dozor-kafka
  Appenders:
    RollingFile:
      name: file
      fileName: "{log_dir}/server.log"
      filePattern: "{log_dir}/server.log.%i"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
      Policies:
        SizeBasedTriggeringPolicy:
          size: 50MB
      DefaultRolloverStrategy:
        max: 3
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        ref: file
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: INFO
"""


#: The embedded broker's super user in SASL mode, and the mechanism it speaks.
ADMIN = "admin"
SCRAM = "SCRAM-SHA-512"
#: The one user of a SASL broker's controller listener: the broker itself.
CONTROLLER_USER = "controller"


@dataclass
class KafkaBroker:
    """One broker+controller node. ``start()`` returns once clients can use it.

    With ``DOZOR_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT`` it listens with SCRAM-SHA-512 and ACLs
    (``grant_dozor``, ``create_user``); otherwise in plaintext, as a development broker.
    """

    settings: Settings

    @property
    def sasl(self) -> bool:
        return self.settings.kafka_security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return "SSL" in self.settings.kafka_security_protocol

    @property
    def tls_dir(self) -> Path:
        """Where a TLS broker keeps its CA (``ca.pem``, for clients' DOZOR_KAFKA_SSL_CAFILE) and its
        certificate and key."""
        return self.home / "tls"

    def _admin_password(self) -> str:
        password = self.settings.kafka_embedded_admin_password.get_secret_value()
        if not password:
            raise DozorError("a SASL broker needs DOZOR_KAFKA_EMBEDDED_ADMIN_PASSWORD (its super user's)")
        return password

    def admin_config(self) -> dict[str, object]:
        """kafka-python options to connect as the broker's super user (SASL, TLS) or anyone."""
        conf: dict[str, object] = {"security_protocol": self.settings.kafka_security_protocol}
        if self.tls:
            conf["ssl_cafile"] = str(self.tls_dir / "ca.pem")
        if self.sasl:
            conf.update({"sasl_mechanism": SCRAM, "sasl_plain_username": ADMIN,
                         "sasl_plain_password": self._admin_password()})  # fmt: skip
        return conf

    def _admin_client(self):  # noqa: ANN202 - kafka-python's KafkaAdminClient
        from kafka import KafkaAdminClient

        return KafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, **self.admin_config()
        )

    def create_user(self, name: str, password: str) -> None:
        """A SCRAM user on the running broker (SASL mode)."""
        from kafka.admin import UserScramCredentialUpsertion

        admin = self._admin_client()
        try:
            errors = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(name, SCRAM, password)])
            if errors.get(name):
                raise DozorError(f"creating Kafka user {name} failed: {errors[name]}")
        finally:
            admin.close()

    def grant(self, user: str, topics: list[str], operations: list[str], prefixed: bool = False,
              groups: str | None = None, transactional: str | None = None) -> None:  # fmt: skip
        """ACLs for ``user``: ``operations`` (READ, WRITE, DESCRIBE, CREATE, ALL…) on ``topics``
        (names, or prefixes with ``prefixed``), and READ on consumer groups / WRITE on
        transactional ids starting with the given prefixes."""
        from kafka.admin import (
            ACL,
            ACLOperation,
            ACLPermissionType,
            ACLResourcePatternType,
            ResourcePattern,
            ResourceType,
        )  # fmt: skip

        pattern = ACLResourcePatternType.PREFIXED if prefixed else ACLResourcePatternType.LITERAL
        principal = f"User:{user}"

        def acl(rtype: ResourceType, name: str, op: str, ptype: ACLResourcePatternType = pattern) -> ACL:
            return ACL(
                principal, "*", ACLOperation[op], ACLPermissionType.ALLOW, ResourcePattern(rtype, name, ptype)
            )

        acls = [acl(ResourceType.TOPIC, t, op) for t in topics for op in operations]
        if groups:
            acls.append(acl(ResourceType.GROUP, groups, "ALL", ACLResourcePatternType.PREFIXED))
        if transactional:
            acls.append(
                acl(ResourceType.TRANSACTIONAL_ID, transactional, "ALL", ACLResourcePatternType.PREFIXED)
            )
            acls.append(
                acl(ResourceType.CLUSTER, "kafka-cluster", "IDEMPOTENT_WRITE", ACLResourcePatternType.LITERAL)
            )
        admin = self._admin_client()
        try:
            result = admin.create_acls(acls)
            if result["failed"]:
                raise DozorError(f"creating Kafka ACLs for {user} failed: {result['failed'][0]}")
        finally:
            admin.close()

    def grant_dozor(self) -> None:
        """Dozor's own user (DOZOR_KAFKA_SASL_USERNAME/PASSWORD): everything on its topics, groups
        and transactional ids, by their prefixes, and nothing else."""
        s = self.settings
        if not (s.kafka_sasl_username and s.kafka_sasl_password):
            raise DozorError("a SASL broker needs DOZOR_KAFKA_SASL_USERNAME and DOZOR_KAFKA_SASL_PASSWORD")
        self.create_user(s.kafka_sasl_username, s.kafka_sasl_password.get_secret_value())
        self.grant(s.kafka_sasl_username, [s.topic_prefix, s.consumer_group], ["ALL"], prefixed=True,
                   groups=s.consumer_group, transactional=s.consumer_group)  # fmt: skip

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "kafka"

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    def _write_config(self) -> Path:
        host, port = self.settings.kafka_host_port
        cport = self.settings.kafka_controller_port
        data = self.home / "data"
        name = self.settings.kafka_security_protocol
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{cport}",
            "listeners": f"{name}://{host}:{port},CONTROLLER://{host}:{cport}",
            "advertised.listeners": f"{name}://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": name,
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{name}:{name}",
            "log.dirs": str(data.resolve()),
            "num.partitions": str(self.settings.topic_partitions),
            # A single node can hold one replica of the internal topics, no more.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Kafka waits 3 s for more members before the first rebalance; one machine has no more.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "168",
            "log.segment.bytes": str(256 * 1024 * 1024),
        }
        if self.sasl:
            # SCRAM on the clients' listener, ACLs enforced, nothing allowed without one. The
            # broker speaks to itself as the super user 'admin'. The controller listener serves
            # admin requests too (Kafka's tools take --bootstrap-controller), so it authenticates
            # as well: SASL/PLAIN (KRaft controllers cannot check SCRAM, whose credentials live in
            # the metadata they serve) with one user, the broker's own, whose password is made
            # anew at every start and lives only in this mode-600 file. No ANONYMOUS super user.
            jaas = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{ADMIN}" password="{self._admin_password()}";'
            )
            controller_password = secrets.token_urlsafe(24)
            controller_jaas = (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{CONTROLLER_USER}" password="{controller_password}" '
                f'user_{CONTROLLER_USER}="{controller_password}";'
            )
            controller_protocol = "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
            props.update({
                "sasl.enabled.mechanisms": SCRAM,
                "sasl.mechanism.inter.broker.protocol": SCRAM,
                f"listener.name.{name.lower()}.{SCRAM.lower()}.sasl.jaas.config": jaas,
                "listener.security.protocol.map": f"CONTROLLER:{controller_protocol},{name}:{name}",
                "sasl.mechanism.controller.protocol": "PLAIN",
                "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
                "listener.name.controller.plain.sasl.jaas.config": controller_jaas,
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": f"User:{ADMIN};User:{CONTROLLER_USER}",
                "allow.everyone.if.no.acl.found": "false",
                "auto.create.topics.enable": "false",
            })  # fmt: skip
        if self.tls:
            # A CA of its own, made once, and a certificate for the listener's address: clients
            # verify it with DOZOR_KAFKA_SSL_CAFILE=<state>/kafka/tls/ca.pem. PEM files, no keystores.
            _make_tls(self.tls_dir, host)
            props.update({
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str((self.tls_dir / "server.pem").resolve()),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str((self.tls_dir / "ca.pem").resolve()),
            })  # fmt: skip
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        path = self.home / "server.properties"
        path.touch(mode=0o600)
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.home / "log4j2.yaml").write_text(_LOG4J2.format(log_dir=(self.home / "logs").resolve()))
        return path

    @staticmethod
    def _env() -> dict[str, str]:
        """The broker's environment: what Java needs, nothing of Dozor's. The broker reads its
        secrets from its own files; it has no use for the ClickHouse passwords, the plate salt or
        the OIDC secret of the shell that started it, and a process that has them can leak them."""
        keep = ("PATH", "HOME", "JAVA_HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
        return {k: v for k, v in os.environ.items() if k in keep}

    def _java(self, jars: Path, main: str, *args: str) -> list[str]:
        return [
            java_binary(),
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={(self.home / 'log4j2.yaml').resolve()}",
            f"-Dkafka.logs.dir={(self.home / 'logs').resolve()}",
            "-cp",
            f"{jars}/*",
            main,
            *args,
        ]

    def running_pid(self) -> int | None:
        """The pid recorded by a previous start, if that process is still alive."""
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def format_storage(self, jars: Path, config: Path, cluster_id: str) -> None:
        """Write the KRaft metadata once, with the SCRAM admin when the listener asks for one.

        The id goes as ``--cluster-id=…`` in one argument: a random id may begin with "-", which
        the tool's parser reads as an option (one start in 64 failed that way in CI).
        """
        scram = (
            ["--add-scram", f"{SCRAM}=[name={ADMIN},password={self._admin_password()}]"] if self.sasl else []
        )
        args = ["format", f"--cluster-id={cluster_id}", "-c", str(config), *scram]
        fmt = subprocess.run(
            self._java(jars, "kafka.tools.StorageTool", *args),
            capture_output=True,
            text=True,
            env=self._env(),
        )
        if fmt.returncode != 0:
            raise DozorError(f"formatting Kafka storage failed: {(fmt.stdout + fmt.stderr)[-800:]}")

    def start(self, timeout_s: float = 90.0) -> subprocess.Popen:
        """Format storage on first use, start the broker, wait until it serves metadata."""
        host, port = self.settings.kafka_host_port
        if self.running_pid():
            raise DozorError(f"a Dozor broker already runs from {self.home} (pid {self.running_pid()})")
        ensure_port_free("Kafka", host, port, "DOZOR_KAFKA_BOOTSTRAP_SERVERS")
        ensure_port_free(
            "Kafka controller", host, self.settings.kafka_controller_port, "DOZOR_KAFKA_CONTROLLER_PORT"
        )
        java_binary()
        jars = fetch_jars(default_jar_dir(self.settings))
        config = self._write_config()
        if not (self.home / "data" / "meta.properties").exists():
            self.format_storage(jars, config, _kafka_uuid())
        out = open(self.home / "logs" / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        parent = os.getpid()
        proc = subprocess.Popen(
            self._java(jars, "kafka.Kafka", str(config)),
            env=self._env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # The broker dies with whoever started it (`dozor up`, `dozor kafka start`, a test run).
            preexec_fn=lambda: die_with_parent(parent),
        )
        self.pid_file.write_text(str(proc.pid))
        log.info("Kafka %s starting on %s:%d (pid %d)", kafka_version(), host, port, proc.pid)
        wait_until(
            "Kafka broker",
            lambda: (
                port_open(host, port)
                and _metadata_ok(self.settings.kafka_bootstrap_servers, self.admin_config())
            ),
            timeout_s,
            proc,
            self.log_path,
        )
        return proc

    def stop(self, grace_s: float = 30.0) -> bool:
        """Stop a running broker (from this or another process) and remove its pid file."""
        pid = self.running_pid()
        if pid is None:
            return False
        stop_process(pid, grace_s)
        self.pid_file.unlink(missing_ok=True)
        return True


def _make_tls(directory: Path, host: str) -> None:
    """A self-signed CA and a server certificate for ``host`` (and localhost), once, in PEM."""
    if (directory / "server.pem").exists():
        return
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dozor embedded Kafka CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    server = directory / "server.pem"
    server.touch(mode=0o600)
    server.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(pem)
        + ca.public_bytes(pem)
    )


def _kafka_uuid() -> str:
    """A cluster id as Kafka writes them: 16 random bytes, URL-safe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _metadata_ok(bootstrap: str, auth: dict[str, object]) -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **auth)
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()
