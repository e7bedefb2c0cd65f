"""The platform-neutral answering core: question in, structured Answer out.

Nothing in this package imports Slack, Discord or torch.
"""
