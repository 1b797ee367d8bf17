"""Turn the validated config into the connection settings the client needs."""

from __future__ import annotations

from edged.config.models import Broker, DeviceIdentity, Link
from edged.link.client import ClientSettings, Endpoint, TlsSettings


def endpoints(broker: Broker, address: tuple[str, int] | None = None) -> list[Endpoint]:
    """The addresses the link tries in order; `address` is the embedded broker's."""
    if address is not None:
        return [Endpoint(*address)]
    return [Endpoint(e.host, e.port, e.server_name) for e in broker.endpoint_list()]


def client_settings(
    broker: Broker,
    link: Link,
    device: DeviceIdentity,
    host: str,
    port: int,
    *,
    broker_speaks_mqtt5: bool = True,
) -> ClientSettings:
    """`host`/`port` are passed in because the embedded broker picks its port at start.

    An embedded broker that is amqtt speaks MQTT 3.1.1 only (`broker_speaks_mqtt5=False`),
    so it is asked for 3.1.1 directly; otherwise MQTT 5 unless the config says `mqtt311`,
    and against an external broker the link falls back to 3.1.1 on its own when the broker
    refuses the protocol version.
    """
    tls = None
    if broker.tls is not None:
        tls = TlsSettings(
            ca_file=str(broker.tls.ca_file),
            cert_file=str(broker.tls.cert_file) if broker.tls.cert_file else None,
            key_file=str(broker.tls.key_file) if broker.tls.key_file else None,
            check_hostname=not broker.tls.insecure_skip_hostname_check,
        )
    return ClientSettings(
        host=host,
        port=port,
        client_id=broker.client_id or f"edged-{device.site}-{device.id}",
        mqtt5=broker.protocol != "mqtt311" and broker_speaks_mqtt5,
        keepalive_s=broker.keepalive_s,
        session_expiry_s=broker.session_expiry_s,
        inflight_window=link.inflight_window,
        username=broker.username,
        password=broker.password.get_secret_value() if broker.password else None,
        tls=tls,
        allow_plain_tcp=broker.allow_plain_tcp,
    )
