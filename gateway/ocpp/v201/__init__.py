"""OCPP 2.0.1: one charging station (one EVSE, one connector) per local charger."""
