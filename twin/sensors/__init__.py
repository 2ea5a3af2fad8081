"""Live sensor feeds (OGC SensorThings API, MQTT): built by the sensor issue."""
