"""OCPP 1.6J: the station adapter projecting one core charger as one charge point."""
