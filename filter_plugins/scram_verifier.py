# -*- coding: utf-8 -*-
# Copyright: onprem.datastores maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""scram_verifier: the SCRAM-SHA-256 verifier PostgreSQL stores for a password, computed here.

A role sends PostgreSQL the verifier (CREATE/ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'), never the
password: the statement text is what log_statement, pgaudit and pg_stat_statements keep. PostgreSQL
stores a verifier as given (it recognises the format) and authenticates with it like one it hashed.

The salt is derived from the role's name, not drawn at random, so that the same password gives
the same verifier on every run, in every role of the collection that manages that PostgreSQL role, and community.postgresql.postgresql_user, which
compares a given verifier with pg_authid as a string, changes nothing when nothing changed. It is
not derived from the password: a salt is public, and one computed from the password would let a
guess be checked without the 4096 PBKDF2 rounds.

Self-contained on purpose (Ansible loads each file of filter_plugins/ as a plugin).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import stringprep
import unicodedata

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: scram_verifier
short_description: The SCRAM-SHA-256 verifier of a password, as PostgreSQL stores it
version_added: 0.3.0
author: onprem.datastores maintainers
description:
  - Returns C(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>) (RFC 5802, RFC 7677), the
    value PostgreSQL keeps in C(pg_authid.rolpassword) with C(password_encryption = scram-sha-256).
  - The password is normalised with SASLprep (RFC 4013) as PostgreSQL does; when SASLprep refuses
    it, PostgreSQL hashes the raw bytes, and so does this filter.
  - The salt is the first 16 bytes of SHA-256 of C(onprem.datastores:<role>), so that a verifier is
    stable across runs and the same in every role that manages O(role). A salt is public. Two
    clusters get different verifiers for a role as long as its passwords differ, which generated
    passwords do.
positional: _input, role
options:
  _input:
    description: The password.
    type: str
    required: true
  role:
    description: The name of the PostgreSQL role.
    type: str
    required: true
  iterations:
    description: PBKDF2 rounds (PostgreSQL's scram_iterations default).
    type: int
    default: 4096
"""

EXAMPLES = r"""
- name: Create a role without sending its password
  community.postgresql.postgresql_user:
    name: app
    password: "{{ app_password | onprem.datastores.scram_verifier('app') }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The verifier.
  type: str
"""

SALT_BYTES = 16
SALT_PREFIX = "onprem.datastores:"


def _saslprep(password: str) -> bytes:
    """RFC 4013 as PostgreSQL's pg_saslprep applies it; the raw UTF-8 bytes when it refuses."""
    raw = password.encode("utf-8")
    if all(0x20 <= c < 0x7F for c in raw):  # printable ASCII maps to itself
        return raw
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch
        for ch in password
        if not stringprep.in_table_b1(ch)
    )
    normal = unicodedata.normalize("NFKC", mapped)
    if not normal:
        return raw
    prohibited = (
        stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22,
        stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
        stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9, stringprep.in_table_a1,
    )
    if any(check(ch) for ch in normal for check in prohibited):
        return raw
    rand_al = [stringprep.in_table_d1(ch) for ch in normal]
    if any(rand_al):
        # RFC 3454 section 6: no L character, and RandALCat first and last
        if any(stringprep.in_table_d2(ch) for ch in normal) or not (rand_al[0] and rand_al[-1]):
            return raw
    return normal.encode("utf-8")


def scram_verifier(password: str, role: str, iterations: int = 4096) -> str:
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError("scram_verifier: the password must be a non-empty string")
    if not isinstance(role, str) or not role:
        raise AnsibleFilterError("scram_verifier: the role name must be a non-empty string")
    if password.startswith("SCRAM-SHA-256$"):
        return password  # already a verifier (a Vault may hold one): PostgreSQL takes it as it is
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise AnsibleFilterError("scram_verifier: iterations must be a positive integer, got %r" % (iterations,))
    salt = hashlib.sha256((SALT_PREFIX + role).encode("utf-8")).digest()[:SALT_BYTES]
    return _verifier(_saslprep(password), salt, iterations)


def _verifier(password: bytes, salt: bytes, iterations: int) -> str:
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt), b64(stored_key), b64(server_key))


class FilterModule:
    def filters(self):
        return {"scram_verifier": scram_verifier}
