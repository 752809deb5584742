"""The operations CLI (`python -m components.ops`): status, logs, one-off commands.

    stack.py    the stack: hosts and SSH settings from Pulumi.<stack>.yaml, its outputs, the key
    remote.py   what runs on the servers, as data (commands and probe scripts, quoted once)
    session.py  how: OpenSSH with pinned host keys and a private agent, bounded, in parallel
    logs.py     merging the hosts' log lines by time
    status.py   the probes' answers as a report
    __main__.py the commands

Nothing here imports pulumi; it never prints a secret.
"""
