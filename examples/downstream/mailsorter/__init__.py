"""mailsorter: sorts the message files of an inbox by recipient domain."""
