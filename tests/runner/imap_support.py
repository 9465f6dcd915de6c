"""A real IMAP server for the mailbox poller's tests: Dovecot (Debian's
`dovecot-imapd`, which ./run-tests installs) started in a temporary directory
with its own configuration: plaintext login on a loopback port, one user in a
passwd-file, a maildir under the directory, no TLS.
"""

from __future__ import annotations

import grp
import imaplib
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from automations.domain.config import Settings

CORPUS = Path(__file__).resolve().parents[1] / "engagement" / "corpus"
USER = "replies"
PASSWORD = "imap-pw-Zq81"  # distinctive, so a test can tell it never reaches a log

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
{chroot}}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{unprivileged}"""

UNPRIVILEGED = """\
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
service anvil {{
  chroot =
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def append(self, *messages: bytes, folder: str = "INBOX") -> list[int]:
        """IMAP APPEND each message; their UIDs."""
        uids = []
        conn = self.client()
        try:
            for raw in messages:
                typ, data = conn.append(folder, None, None, raw)
                assert typ == "OK", data
                found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
                assert found, data
                uids.append(int(found.group(1)))
        finally:
            conn.logout()
        return uids

    def seen(self, folder: str = "INBOX") -> dict[int, bool]:
        """UID -> whether the message is flagged \\Seen."""
        conn = self.client()
        try:
            conn.select(folder, readonly=True)
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            assert typ == "OK", data
        finally:
            conn.logout()
        flags = {}
        for line in data:
            if isinstance(line, bytes) and (found := re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line)):
                flags[int(found.group(1))] = b"\\Seen" in found.group(2).split()
        return flags

    def settings(self, **more: Any) -> Settings:
        values: dict[str, Any] = {
            "imap_host": self.host,
            "imap_port": self.port,
            "imap_username": self.user,
            "imap_password": self.password,
            "imap_ssl": False,
            "imap_interval": 0,
            **more,
        }
        return Settings(_env_file=None, **values)

    def env(self, **more: str) -> dict[str, str]:
        """The same, for a runner process."""
        return {
            "AUTOMATIONS_IMAP_HOST": self.host,
            "AUTOMATIONS_IMAP_PORT": str(self.port),
            "AUTOMATIONS_IMAP_USERNAME": self.user,
            "AUTOMATIONS_IMAP_PASSWORD": self.password,
            "AUTOMATIONS_IMAP_SSL": "0",
            "AUTOMATIONS_IMAP_INTERVAL": "0",
            **more,
        }


def _accounts() -> tuple[str, int, int, str]:
    """Dovecot's own users and the owner of the mail: as root, Debian's `dovecot`
    system user (Dovecot refuses mail access as root); otherwise everything runs
    as the current user, without chroot."""
    if os.geteuid() == 0:
        mail = pwd.getpwnam("dovecot")
        return "", mail.pw_uid, mail.pw_gid, ""
    me = pwd.getpwuid(os.geteuid())
    unprivileged = UNPRIVILEGED.format(user=me.pw_name, group=grp.getgrgid(me.pw_gid).gr_name)
    return unprivileged, me.pw_uid, me.pw_gid, "  chroot =\n"


@contextmanager
def dovecot_server() -> Iterator[Dovecot]:
    """A running Dovecot with an empty INBOX; stopped and removed afterwards."""
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(binary):
        pytest.fail("Dovecot is required for the mailbox tests: ./run-tests installs it (dovecot-imapd)")
    # Not pytest's tmp_path: Dovecot's unprivileged processes must reach the maildir.
    root = Path(tempfile.mkdtemp(prefix="automations-dovecot-"))
    root.chmod(0o755)
    unprivileged, uid, gid, chroot = _accounts()
    for name in ("run", "state", "mail"):
        (root / name).mkdir()
    os.chown(root / "mail", uid, gid)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(CONFIG.format(root=root, port=port, uid=uid, gid=gid, unprivileged=unprivileged, chroot=chroot))
    process = subprocess.Popen(
        [binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=(root / "stderr.log").open("wb")
    )
    server = Dovecot(root=root, port=port, process=process)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: Dovecot) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            server.client().logout()
            return
        except (OSError, imaplib.IMAP4.error):
            time.sleep(0.1)
    logs = "".join(
        path.read_text(errors="replace")[-2000:]
        for path in (server.root / "stderr.log", server.root / "dovecot.log")
        if path.exists()
    )
    pytest.fail(f"Dovecot did not start (exit code {server.process.poll()}):\n{logs}")


def corpus_message(name: str, step_key: str, *, message_id: str | None = None) -> bytes:
    """A message of the engagement corpus made to answer the step with `step_key`:
    the Message-ID of ours it refers to is that step's; optionally its own
    Message-ID replaced (so copies of one message differ)."""
    raw = (CORPUS / name).read_bytes()
    expected = json.loads((CORPUS / "expected.json").read_text())[name]
    ours = expected["match_keys"][0].split("@", 1)[0]
    raw = raw.replace(ours.encode(), step_key.encode()).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if message_id is not None:
        raw = re.sub(rb"(?im)^Message-ID:[^\r\n]*", b"Message-ID: <" + message_id.encode() + b">", raw, count=1)
    return raw
