"""Front ends: thin translators between a platform and the conversation layer."""
