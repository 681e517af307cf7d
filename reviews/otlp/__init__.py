"""OpenTelemetry intake: LLM spans of OTLP trace exports become items (see services)."""
