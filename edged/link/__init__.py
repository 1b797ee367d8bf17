"""The link to the cloud broker: MQTT connection, outbox pump, birth/will, verified downlink.

Where things are: `client.py` one paho connection driven by the asyncio loop; `service.py`
the supervised reconnect loop that uses it; `pump.py` outbox rows out at QoS 1; `birth.py`
the retained online/offline state; `downlink.py` verification and the handler router;
`health.py` periodic telemetry; `embedded_broker.py` the development broker.
"""
