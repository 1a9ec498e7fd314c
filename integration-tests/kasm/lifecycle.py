#!/usr/bin/env python3
"""Drive a full Kasm Developer-API lifecycle with the third-party PyPI client `kasm` (Codoc-os/pykasm).

Install:  python3 -m venv /tmp/kasmvenv && /tmp/kasmvenv/bin/pip install kasm==1.18.1.0
Env vars:
  KASM_BASE_URL      e.g. http://127.0.0.1:8443   (any path part is IGNORED by the client:
                     endpoints are urljoin(url, "/api/public/<name>"))
  KASM_API_KEY, KASM_API_KEY_SECRET
  KASM_IMAGE_ID      image to launch (if unset, the first image of get_images is used)
  KASM_VERIFY_TLS    "false" to disable TLS verification (default: verify)
  KASM_POLL_TIMEOUT  seconds to wait for operational_status == "running" (default 120)
Exit code 0 on success; every step is printed.
"""
import json
import os
import sys
import time
import uuid

from kasm.clients.sync.clients import SyncClient
from kasm.exceptions import RequestError


def check(step, resp):
    """The client only raises on HTTP >= 300; Kasm-style errors come as 200 + error_message."""
    body = resp.json()
    print(f"[{step}] HTTP {resp.status_code}: {json.dumps(body)[:300]}")
    if isinstance(body, dict) and body.get("error_message"):
        raise SystemExit(f"{step} failed: {body['error_message']}")
    return body


def main():
    client = SyncClient(
        key=os.environ["KASM_API_KEY"],
        secret=os.environ["KASM_API_KEY_SECRET"],
        url=os.environ["KASM_BASE_URL"],
        verify_ssl=os.environ.get("KASM_VERIFY_TLS", "true").lower() not in ("0", "false", "no"),
        timeout=30,
    )
    deadline_s = float(os.environ.get("KASM_POLL_TIMEOUT", "120"))

    username = f"lifecycle-{uuid.uuid4().hex[:8]}@example.test"
    user = check("create_user", client.users.create(
        username=username, password=uuid.uuid4().hex, first_name="Life", last_name="Cycle"))["user"]
    user_id = user["user_id"]

    got = check("get_user", client.users.get(user_id=user_id))["user"]
    assert got["username"] == username, got
    attrs = check("get_attributes", client.users.get_attributes(user_id))["user_attributes"]
    for key in ("user_attributes_id", "ssh_public_key", "show_tips", "theme", "preferred_language",
                "preferred_timezone", "toggle_control_panel", "default_image", "auto_login_kasm"):
        assert key in attrs, f"get_attributes lacks {key}: {attrs}"
    users = check("get_users", client.users.get())["users"]
    assert any(u["user_id"] == user_id for u in users), "user missing from get_users"

    images = check("get_images", client.images.get())["images"]
    image_id = os.environ.get("KASM_IMAGE_ID") or images[0]["image_id"]

    kasm_id = None
    try:
        req = check("request_kasm", client.sessions.request(user_id=user_id, image_id=image_id))
        kasm_id = req["kasm_id"]

        deadline = time.time() + deadline_s
        while True:
            st = check("get_kasm_status", client.sessions.status(user_id=user_id, session_id=kasm_id))
            op = st.get("operational_status") or (st.get("kasm") or {}).get("operational_status")
            if op == "running":
                print("kasm_url:", st.get("kasm_url"))
                break
            if time.time() > deadline:
                raise SystemExit(f"session {kasm_id} not running after {deadline_s}s (last: {op})")
            time.sleep(2)

        check("keepalive", client.sessions.keepalive(session_id=kasm_id))

        # The client's objects parse our answers too (dates, groups, attributes, sessions).
        from kasm.connections import connections
        from kasm.images import Image
        from kasm.sessions import Session
        from kasm.users import User
        connections.configure(default={"url": os.environ["KASM_BASE_URL"], "key": client.key,
                                       "secret": client.secret, "verify_ssl": client.verify_ssl})
        obj = User.get(user_id=user_id)
        assert obj.username == username and obj.created is not None, obj
        assert obj.attributes.user_attributes_id, "attributes"
        assert any(i.image_id == image_id.replace("-", "") for i in Image.all()), "Image.all"
        live = [s for s in Session.all() if s.session_id == kasm_id.replace("-", "")]
        assert live and str(live[0].status) == "running", live
        print("[objects] User, Attribute, Image, Session parsed")

        kasms = check("get_kasms", client.sessions.get())["kasms"]
        norm = lambda s: str(s).replace("-", "")
        assert any(norm(k["kasm_id"]) == norm(kasm_id) for k in kasms), "session missing from get_kasms"

        check("destroy_kasm", client.sessions.destroy(user_id=user_id, session_id=kasm_id))
        kasm_id = None
    finally:
        if kasm_id:  # best-effort cleanup after a failure
            try:
                client.sessions.destroy(user_id=user_id, session_id=kasm_id, raise_on_error=False)
            except Exception:
                pass
        check("delete_user", client.users.delete(user_id=user_id, force=True, raise_on_error=False))
    print("LIFECYCLE OK")


if __name__ == "__main__":
    try:
        main()
    except RequestError as e:  # raised by the client for HTTP status >= 300
        sys.exit(f"HTTP error: {e}")
