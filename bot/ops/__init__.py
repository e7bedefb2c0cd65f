"""Operations: Prometheus metrics and the health endpoints (docs/scaling.md)."""
