"""OCPI 2.2.1 as a CPO: the HTTP server, the partners, the modules and the pushes."""
