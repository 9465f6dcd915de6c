"""Engagement: what recipients do with the messages and what comes back from them.

`inbound` parses raw RFC 5322 messages (replies, auto-replies, bounces) and
classifies them without touching the database; `text` turns bodies into plain
text and strips quoted history; `dates` reads an out-of-office return date.
"""
