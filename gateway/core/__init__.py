"""The core domain model: chargers, connectors and sessions.

Southbound drivers feed it readings; northbound adapters project it upstream and talk to each
other only through it (`gateway.core.site.Site`).
"""
