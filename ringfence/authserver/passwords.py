"""argon2id password hashing, off the event loop.

One hash costs about 64 MiB and tens of milliseconds of CPU: done on the event loop, a burst of
sign-ins would stall every other request. Hashes are computed in a small dedicated thread pool
instead (argon2-cffi releases the GIL), bounded so that a flood of sign-ins waits its turn there,
holding neither the event loop nor the worker threads other requests use, and at most
``HASHING_THREADS`` hashes' memory at once.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHING_THREADS = 2

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="ringfence-argon2")


@cache
def _dummy_hash() -> str:
    """Verified against when an account does not exist, so timing does not reveal which names exist.
    Made on first use (in the pool), not when the module is imported."""
    return _hasher.hash(secrets.token_hex(16))


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def _in_pool(function, *args):  # type: ignore[no-untyped-def]
    return await asyncio.get_running_loop().run_in_executor(_pool(), function, *args)


async def hash_password(password: str) -> str:
    """A new argon2id hash of ``password``."""
    return await _in_pool(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; with ``None`` (no such account), ``False``
    after the same work as a real check."""
    return await _in_pool(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (cheap: no hashing)."""
    return _hasher.check_needs_rehash(password_hash)
