"""`kafka.security` for both Kafka clients: librdkafka (confluent_kafka: the API's producers, the admin client)
and the Java client (Spark's Kafka source and sink, as `kafka.<key>` options).

The two clients name some settings differently and each refuses the other's: librdkafka rejects
`sasl.jaas.config` and trust stores, the Java client has no `sasl.username` or `ssl.ca.location`. So
`kafka.security` is written once, in librdkafka's terms, and translated here for the Java client:

| `kafka.security` key | librdkafka | Java client (Spark `kafka.<key>`) |
|---|---|---|
| `security.protocol` | as is | as is |
| `sasl.mechanism` (or `sasl.mechanisms`) | `sasl.mechanism` | `sasl.mechanism` |
| `sasl.username` + `sasl.password` | as is | `sasl.jaas.config` with the PLAIN or SCRAM login module |
| `ssl.ca.location` (a PEM file) | as is | `ssl.truststore.type=PEM`, `ssl.truststore.location` |
| `ssl.endpoint.identification.algorithm` | as is (`https`, `none`) | as is, `none` becomes `""` |
| `enable.ssl.certificate.verification` | as is | not passed (the Java client has no such switch) |
| `librdkafka.<key>` | `<key>` | not passed |
| `java.<key>` | not passed | `<key>` (wins over the translation, e.g. `java.sasl.jaas.config`) |
| any other key | as is | as is |

Key names may use `_` for `.` (`sasl_password`), so a secret can come from a shell-friendly variable such as
`RECSYS__KAFKA__SECURITY__SASL_PASSWORD` (config layering: recsys/config.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from recsys.config import ConfigError

LIBRDKAFKA_PREFIX = "librdkafka."
JAVA_PREFIX = "java."
PASSWORD_VARIABLE = "RECSYS__KAFKA__SECURITY__SASL_PASSWORD"

# librdkafka-only settings with no Java counterpart; ssl.ca.location is translated instead.
_LIBRDKAFKA_ONLY = {"enable.ssl.certificate.verification", "ssl.ca.location", "sasl.username", "sasl.password",
                    "ssl.certificate.location", "ssl.key.location"}
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def canonical(security: Mapping[str, str]) -> dict[str, str]:
    """Key names with `_` spelled `.`, `sasl.mechanisms` spelled `sasl.mechanism`; later duplicates win."""
    out: dict[str, str] = {}
    for key, value in security.items():
        name = key.strip().lower().replace("_", ".")
        if name == "sasl.mechanisms":
            name = "sasl.mechanism"
        if not isinstance(value, str):
            raise ConfigError(f"kafka.security.{key}: values must be strings, not {type(value).__name__} "
                              f"({value!r}); quote it")
        out[name] = value
    return out


def _check_credentials(conf: Mapping[str, str]) -> None:
    if "sasl.username" in conf and not conf.get("sasl.password"):
        raise ConfigError(f"kafka.security.sasl.username is set but sasl.password is not; set {PASSWORD_VARIABLE} "
                          "in the environment (never in a file)")
    if "sasl.password" in conf and "sasl.username" not in conf:
        raise ConfigError("kafka.security.sasl.password is set without sasl.username")


def librdkafka_conf(security: Mapping[str, str]) -> dict[str, str]:
    """Settings for confluent_kafka's Producer, Consumer and AdminClient."""
    conf = canonical(security)
    _check_credentials(conf)
    out = {k: v for k, v in conf.items() if not k.startswith((LIBRDKAFKA_PREFIX, JAVA_PREFIX))}
    out.update({k[len(LIBRDKAFKA_PREFIX):]: v for k, v in conf.items() if k.startswith(LIBRDKAFKA_PREFIX)})
    return out


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def java_conf(security: Mapping[str, str]) -> dict[str, str]:
    """The same settings for the Java Kafka client (without Spark's `kafka.` prefix)."""
    conf = canonical(security)
    _check_credentials(conf)
    overrides = {k[len(JAVA_PREFIX):]: v for k, v in conf.items() if k.startswith(JAVA_PREFIX)}
    plain = {k: v for k, v in conf.items() if not k.startswith((LIBRDKAFKA_PREFIX, JAVA_PREFIX))}
    out = {k: v for k, v in plain.items() if k not in _LIBRDKAFKA_ONLY}
    if "sasl.username" in plain and "sasl.jaas.config" not in overrides:
        mechanism = plain.get("sasl.mechanism", "PLAIN").upper()
        module = _LOGIN_MODULES.get(mechanism)
        if module is None:
            raise ConfigError(f"kafka.security: no login module known for sasl.mechanism={mechanism}; set "
                              "java.sasl.jaas.config for the Java client")
        out["sasl.jaas.config"] = (f"{module} required username={_jaas_quote(plain['sasl.username'])} "
                                   f"password={_jaas_quote(plain['sasl.password'])};")
    if "ssl.ca.location" in plain and "ssl.truststore.location" not in overrides:
        out["ssl.truststore.type"] = "PEM"
        out["ssl.truststore.location"] = plain["ssl.ca.location"]
    if ({"ssl.certificate.location", "ssl.key.location"} & plain.keys()) and "ssl.keystore.location" not in overrides:
        raise ConfigError("kafka.security: client certificates (ssl.certificate.location, ssl.key.location) need "
                          "java.ssl.keystore.type=PEM and java.ssl.keystore.location (one PEM file holding the "
                          "key and its certificate chain) for the Java client")
    if out.get("ssl.endpoint.identification.algorithm", "").lower() == "none":
        out["ssl.endpoint.identification.algorithm"] = ""
    out.update(overrides)
    return out


def spark_kafka_options(security: Mapping[str, str]) -> dict[str, str]:
    """`kafka.security` as options of Spark's Kafka source and sink."""
    return {f"kafka.{key}": value for key, value in java_conf(security).items()}
