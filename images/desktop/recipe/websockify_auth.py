"""Basic auth for websockify in Atrium's desktop image (/usr/local/lib/atrium/, loaded with
--auth-plugin atrium_websockify_auth.KasmBasicAuth --auth-source kasm_user).

websockify's own BasicHTTPAuth works with --web-auth, but this one differs where it matters:
the password comes from $VNC_PW, so it is not on websockify's command line for every process
to read; credentials are compared in constant time; and the 401 is a complete response
(Content-Length: 0, then the connection closes), where BasicHTTPAuth's has no length, so strict
clients and proxies fail to read it instead of seeing a 401.
"""

import base64
import binascii
import hmac
import os

from websockify.auth_plugins import AuthenticationError

REALM = "Atrium desktop"


class KasmBasicAuth:
    def __init__(self, src=None):
        self.user = (src or "kasm_user").encode("utf-8")
        password = os.environ.get("VNC_PW", "")
        if not password:
            raise SystemExit("atrium_websockify_auth: VNC_PW is empty or unset")
        self.password = password.encode("utf-8")

    def authenticate(self, headers, target_host, target_port):
        scheme, _, encoded = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                decoded = b""
            user, colon, password = decoded.partition(b":")
            # Both comparisons always run: the time taken says nothing about which failed.
            user_ok = hmac.compare_digest(user, self.user)
            password_ok = hmac.compare_digest(password, self.password)
            if colon and user_ok and password_ok:
                return
        raise AuthenticationError(
            log_msg="basic auth failed",
            response_code=401,
            response_headers={
                "WWW-Authenticate": 'Basic realm="%s", charset="UTF-8"' % REALM,
                "Content-Length": "0",
                "Connection": "close",
            },
        )
