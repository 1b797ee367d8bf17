"""Real parts for tests: a Mosquitto broker, the daemon as a process, MQTT observers."""
