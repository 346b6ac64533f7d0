"""evgw: an edge gateway for EV charging sites.

Chargers that speak Modbus or MQTT are polled by southbound drivers (`gateway.modbus`), their
state is owned by the core domain model (`gateway.core`), and northbound adapters
(`gateway.ocpp`) present them to a central system. What must survive a crash lives in one
SQLite store (`gateway.store`).
"""

__version__ = "0.1.0"
