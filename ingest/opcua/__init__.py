"""OPC UA edge bridge: a machine's OPC UA server to the JSON contract over MQTT."""
