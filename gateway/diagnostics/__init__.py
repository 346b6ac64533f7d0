"""The diagnostics bundle (`bundle`) and the removal of secrets from it (`scrub`)."""
