"""Password hashing: Argon2id with the OWASP-recommended minimum (19 MiB, 2 passes, 1 lane).

Django's own Argon2 defaults (100 MiB, 8 lanes) cost 0.1 s on an idle machine but 0.4 to 0.6 s on
a busy two-core one, where the eight lanes wait for CPU; these parameters keep a login well
under half a second of server time there too. Hashes made with other parameters still verify
(Argon2 stores its parameters in the hash) and are rewritten with these at the next login.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
