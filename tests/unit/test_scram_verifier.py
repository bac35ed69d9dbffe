# -*- coding: utf-8 -*-
"""scram_verifier against verifiers PostgreSQL 15 computed itself.

The expected values were made by a real server (initdb, password_encryption = scram-sha-256,
CREATE ROLE x PASSWORD '...', SELECT rolpassword FROM pg_authid) with its own random salts; the
filter is given the same salt and must produce the same StoredKey and ServerKey, byte for byte.
"""

import base64
import hashlib

import pytest
from ansible.errors import AnsibleFilterError

import scram_verifier as sv

# password -> what PostgreSQL 15.x stored for it
POSTGRES_MADE = {
    # printable ASCII: SASLprep leaves it as it is
    "pencil": "SCRAM-SHA-256$4096:h/r9VrkdT6DGrxZiPx9NNw==$lTfw1NSez9Dhm/cQq3sueodWIIEsNRzgDrBdHLYSBUo="
              ":LmFeNn6+qQnnOqHJsmncROTOy6zNiV8RzKkFbng81F0=",
    # SOFT HYPHEN is mapped to nothing (RFC 4013 table B.1): hashed as "IX"
    "I\u00adX": "SCRAM-SHA-256$4096:BtaybjivHR961mcOhgssJA==$VyhKTNIOX9OJE3JM9hUr0329FycgZDAH6dDKYjpUMgg="
                ":Qk1/OLru82wbgUZFX9npkuAnoU5abm4R/qGtc9Xh7N8=",
    # ROMAN NUMERAL NINE and FEMININE ORDINAL: NFKC turns them into "IXa"
    "\u2168\u00aa": "SCRAM-SHA-256$4096:HEaQs4BMSOhfCabSDkiqWg==$F2i5iiqyIdAzx15NksuZHnBnFvxRutRTyUCttctb4B4="
                    ":jc9008E7a2cqcH2YR/e2P29po3KKf1br2ZnhS7KzhbQ=",
    # a control character is prohibited: PostgreSQL hashes the raw bytes
    "p\u0007w": "SCRAM-SHA-256$4096:DgjVG6Gx5S4pl6Em4XaSxQ==$smtq+ob/TjFxMnE9UZPBq1xRTSqQXGA52VoMFXHOKhQ="
                ":ubYmLGanvjmr8OyXklsBR55E2U5X6k55Njd1oC7FywA=",
}


@pytest.mark.parametrize("password", sorted(POSTGRES_MADE))
def test_same_verifier_as_postgresql_for_the_same_salt(password):
    expected = POSTGRES_MADE[password]
    salt = base64.b64decode(expected.split("$")[1].split(":")[1])
    assert sv._verifier(sv._saslprep(password), salt, 4096) == expected


def salt(verifier):
    return verifier.split("$")[1].split(":")[1]


def test_salt_comes_from_the_role_not_the_password():
    one = sv.scram_verifier("pencil", "app")
    other_password = sv.scram_verifier("crayon", "app")
    other_role = sv.scram_verifier("pencil", "report")
    assert salt(one) == salt(other_password) != salt(other_role)
    assert base64.b64decode(salt(one)) == hashlib.sha256(b"onprem.datastores:app").digest()[:16]
    assert one == sv.scram_verifier("pencil", "app")  # stable across runs
    assert "pencil" not in one


def test_a_verifier_is_passed_through():
    verifier = POSTGRES_MADE["pencil"]
    assert sv.scram_verifier(verifier, "app") == verifier


@pytest.mark.parametrize("args, reason", [
    (("", "app"), "the password must be a non-empty string"),
    ((None, "app"), "the password must be a non-empty string"),
    (("pencil", ""), "the role name must be a non-empty string"),
    (("pencil", "app", 0), "iterations must be a positive integer, got 0"),
])
def test_refusals_name_the_reason(args, reason):
    with pytest.raises(AnsibleFilterError, match=reason):
        sv.scram_verifier(*args)
