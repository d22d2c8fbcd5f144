"""Request/reply bus: envelopes, transports (memory://, amqp://), the worker and the client."""
