"""The door access log: ingest of door controllers' CSV exports, sealed storage, ticket-bound lookups,
retention (docs/design/doorlog.md)."""
