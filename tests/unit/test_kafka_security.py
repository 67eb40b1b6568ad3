"""kafka.security is written once and given to librdkafka as is and to the Java client (Spark) translated."""

import certifi
import pytest
from confluent_kafka import KafkaException, Producer

from recsys.config import ConfigError, load_settings
from recsys.kafka.security import canonical, java_conf, librdkafka_conf, spark_kafka_options

pytestmark = pytest.mark.unit

SASL_SSL = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "recsys",
            "sasl_password": 'pa"ss\\word', "ssl.ca.location": "/tls/ca.crt"}


def test_underscores_spell_dots_so_secrets_can_come_from_shell_variables():
    assert canonical({"SASL_PASSWORD": "x", "sasl.mechanisms": "PLAIN"}) == {"sasl.password": "x",
                                                                            "sasl.mechanism": "PLAIN"}


def test_librdkafka_gets_its_own_names_and_no_java_settings():
    conf = librdkafka_conf({**SASL_SSL, "java.sasl.kerberos.service.name": "kafka", "librdkafka.debug": "security"})
    assert conf == {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "recsys",
                    "sasl.password": 'pa"ss\\word', "ssl.ca.location": "/tls/ca.crt", "debug": "security"}


def test_java_client_gets_jaas_and_a_pem_truststore():
    conf = java_conf(SASL_SSL)
    assert conf == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                            'username="recsys" password="pa\\"ss\\\\word";',
        "ssl.truststore.type": "PEM", "ssl.truststore.location": "/tls/ca.crt",
    }
    assert spark_kafka_options(SASL_SSL)["kafka.sasl.jaas.config"] == conf["sasl.jaas.config"]


def test_plain_is_the_default_mechanism_and_java_overrides_win():
    conf = java_conf({"security.protocol": "SASL_PLAINTEXT", "sasl.username": "u", "sasl.password": "p"})
    assert conf["sasl.jaas.config"].startswith("org.apache.kafka.common.security.plain.PlainLoginModule required")
    custom = java_conf({"sasl.mechanism": "OAUTHBEARER", "java.sasl.jaas.config": "x required;",
                        "ssl.endpoint.identification.algorithm": "none",
                        "enable.ssl.certificate.verification": "false"})
    assert custom == {"sasl.mechanism": "OAUTHBEARER", "sasl.jaas.config": "x required;",
                      "ssl.endpoint.identification.algorithm": ""}


@pytest.mark.parametrize("security, message", [
    ({"sasl.username": "u"}, "RECSYS__KAFKA__SECURITY__SASL_PASSWORD"),
    ({"sasl.password": "p"}, "without sasl.username"),
    ({"sasl.mechanism": "GSSAPI", "sasl.username": "u", "sasl.password": "p"}, "java.sasl.jaas.config"),
    ({"ssl.key.location": "/k.pem", "ssl.certificate.location": "/c.pem"}, "java.ssl.keystore.location"),
    ({"sasl.password": 1234}, "quote"),
])
def test_incomplete_settings_fail_naming_the_fix(security, message):
    with pytest.raises(ConfigError, match=message):
        java_conf(security)


def test_librdkafka_accepts_every_translated_key():
    """A real client is built from the translated settings (no broker needed: it only parses them)."""
    ca = certifi.where()  # any readable PEM bundle
    security = {**SASL_SSL, "ssl.ca.location": ca, "ssl.endpoint.identification.algorithm": "https"}
    producer = Producer({"bootstrap.servers": "127.0.0.1:9", "log_level": 0, **librdkafka_conf(security)})
    producer.flush(0)
    with pytest.raises(KafkaException, match="JAAS"):  # what happens without the translation
        Producer({"bootstrap.servers": "127.0.0.1:9", **java_conf(security)})


def test_cluster_environment_maps_for_both_clients_once_the_password_is_set():
    settings = load_settings("cluster", environ={"RECSYS__KAFKA__SECURITY__SASL_PASSWORD": "0f1e2d3c4b5a"})
    assert librdkafka_conf(settings.kafka.security)["sasl.password"] == "0f1e2d3c4b5a"
    assert 'password="0f1e2d3c4b5a"' in java_conf(settings.kafka.security)["sasl.jaas.config"]
    with pytest.raises(ConfigError, match="SASL_PASSWORD"):
        librdkafka_conf(load_settings("cluster", environ={}).kafka.security)
