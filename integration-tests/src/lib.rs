//! Cross-service scenarios live in `tests/`; this library is empty. Each scenario starts the
//! services it needs in-process, on loopback ports, over fresh PostgreSQL databases.
