"""Wire contracts of tokenpulse: event models, topic names, and declarative config models.

Everything that crosses a process boundary (Kafka records, config files) is defined here
and nowhere else, so a change of shape is a visible, versioned change of one file.
"""
