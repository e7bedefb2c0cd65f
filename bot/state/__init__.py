"""Short-lived state that several replicas of the bot must share, behind small interfaces.

Without QABOT_REDIS_URL everything lives in this process (`local.py`): `make chat` and a single
`qabot run` need nothing new. With it, the same interfaces are implemented on Redis (`redis_state.py`):
event de-duplication (SET NX with a TTL), rate limits (the `limits` library's moving window on its
Redis storage), the rebuild lock, a reload broadcast, and the Slack events a replica accepted but had
not answered yet (so a live replica answers them when that one dies). Whenever Redis cannot be
reached each replica falls back to its in-process state, says so in its log and in /readyz, and goes
back to Redis as soon as it answers again, without a restart. `shared.py` picks the implementation.
"""
