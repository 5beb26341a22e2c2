"""A client's published signing keys: a JWK Set (RFC 7517 §5) of public, asymmetric keys only.

One rule for every place a client publishes keys (a metadata document's ``jwks``, the document at its
``jwks_uri``, an RFC 7591 registration), so that ``private_key_jwt`` can only ever be verified with a
public key: a key set with private or symmetric members is refused whole, never filtered.
"""

from __future__ import annotations

from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

MAX_KEYS = 10
# RFC 7518 §6.2.2, §6.3.2, §6.4.1, RFC 8037 §2: private members; "k" is a shared (symmetric) secret.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Asymmetric signature algorithms only: a key set can never make a symmetric one (HS*) or "none"
# acceptable. EdDSA is left out (deprecated by RFC 9864 in favour of Ed25519).
SIGNING_ALGORITHMS: dict[str, type[ECKey | RSAKey | OKPKey]] = {
    "ES256": ECKey, "ES384": ECKey, "ES512": ECKey,
    "RS256": RSAKey, "RS384": RSAKey, "RS512": RSAKey,
    "PS256": RSAKey, "PS384": RSAKey, "PS512": RSAKey,
    "Ed25519": OKPKey,
}
_KEY_TYPES = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}
SigningKey = ECKey | RSAKey | OKPKey
MIN_RSA_BITS = 2048  # RFC 7518 §3.3: a key of size 2048 bits or larger MUST be used

NOT_A_KEY_SET = "is not a JSON Web Key Set of at most 10 public signing keys"
HAS_PRIVATE_KEY = "must not contain private key material"


class KeySetRefused(ValueError):
    """A published key set that may not be used; the message completes "The client's jwks ...". """


def check_key_set_shape(value: object) -> list[dict[str, Any]]:
    """The keys of a JWK Set with at most :data:`MAX_KEYS` keys and no private member, or :class:`KeySetRefused`."""
    keys = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(keys, list) or not keys or len(keys) > MAX_KEYS or not all(isinstance(k, dict) for k in keys):
        raise KeySetRefused(NOT_A_KEY_SET)
    if any(PRIVATE_MEMBERS & key.keys() for key in keys):
        # CIMD (credential and key material restrictions): private key material MUST NOT be included.
        raise KeySetRefused(HAS_PRIVATE_KEY)
    return keys


def public_key_set(value: object) -> KeySet:
    """The signing keys of a published JWK Set; raises :class:`KeySetRefused` for anything else.

    Every key must be EC, RSA (2048 bits or more) or OKP, public, and not marked for encryption only.
    """
    keys = check_key_set_shape(value)
    imported = []
    for data in keys:
        kty = data.get("kty")
        key_class = _KEY_TYPES.get(kty) if isinstance(kty, str) else None
        if key_class is None or data.get("use", "sig") != "sig" or (key_class is RSAKey and not _long_enough(data)):
            raise KeySetRefused(NOT_A_KEY_SET)
        try:
            key = key_class.import_key(data)
        except (JoseError, ValueError, TypeError, KeyError, AttributeError):  # whatever the JSON held
            raise KeySetRefused(NOT_A_KEY_SET) from None
        if key.is_private:
            raise KeySetRefused(NOT_A_KEY_SET)
        imported.append(key)
    return KeySet(imported)


def _long_enough(data: dict[str, Any]) -> bool:
    """An RSA key's modulus has :data:`MIN_RSA_BITS` (checked before import, which would only warn)."""
    modulus = data.get("n")
    if not isinstance(modulus, str):
        return False
    return len(modulus.rstrip("=")) * 6 >= MIN_RSA_BITS - 6  # base64url: 6 bits a character


def signing_key(keys: KeySet, kid: object, alg: str) -> SigningKey | None:
    """The key of ``keys`` that may verify an ``alg`` signature with header ``kid``, or ``None``.

    Without a ``kid`` only a set of one key is usable. The key's type must be the one ``alg`` uses,
    and a key that names its ``alg`` (RFC 7517 §4.4) is used with that algorithm only.
    """
    expected = SIGNING_ALGORITHMS.get(alg)
    if expected is None:
        return None
    if kid is None:
        candidates = list(keys) if len(keys.keys) == 1 else []
    elif isinstance(kid, str):
        candidates = [key for key in keys if key.kid == kid]
    else:
        return None
    for key in candidates:
        if isinstance(key, expected) and key.get("alg", alg) == alg:
            return key
    return None
