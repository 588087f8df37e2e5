r"""Group-chat robots Chinese utilities use: WeCom (企业微信) and DingTalk (钉钉) webhook formats and signing.

WeCom group robot: POST `<url>?key=<robot key>` (the key is the secret), JSON `{"msgtype": "markdown",
"markdown": {"content": ...}}` (at most 4096 bytes) or `{"msgtype": "text", "text": {"content": ...,
"mentioned_mobile_list": [...]}}` (at most 2048 bytes); the answer is `{"errcode": 0, "errmsg": "ok"}`.

DingTalk custom robot: POST `<url>?access_token=<token>&timestamp=<ms>&sign=<sign>` where `sign` is the
HMAC-SHA256 of `"<timestamp>\\n<secret>"` keyed with the secret, Base64-encoded, then URL-encoded (加签; the
timestamp may be at most an hour off); JSON `{"msgtype": "markdown", "markdown": {"title", "text"}, "at":
{"atMobiles": [...]}}` or `{"msgtype": "text", "text": {"content"}}`; the answer is `{"errcode": 0, ...}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote_plus

import httpx

from crm_bridge.notify.mail import NotifyError

WECOM_MARKDOWN_MAX = 4096
WECOM_TEXT_MAX = 2048
DINGTALK_MAX = 20000
# WeCom 45009 and DingTalk 130101 / 660026: sent too often; the same message may go through later.
_RATE_LIMITED = {45009, 130101, 660026}


def _cut(text: str, max_bytes: int) -> str:
    """`text` shortened to at most `max_bytes` of UTF-8 without splitting a character."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - 3].decode("utf-8", errors="ignore") + "..."


def dingtalk_signature(secret: str, timestamp_ms: str) -> str:
    r"""DingTalk's 加签 before URL-encoding: Base64 of HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>")."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """The `sign` query value as it travels: the signature, URL-encoded."""
    return quote_plus(dingtalk_signature(secret, timestamp_ms))


def dingtalk_verify(secret: str, timestamp_ms: str, sign: str, now_ms: float, tolerance_ms: float = 3_600_000) -> bool:
    """The robot's side: the signature (as received, URL-decoded) matches and the timestamp is within the hour."""
    try:
        ts = float(timestamp_ms)
    except ValueError:
        return False
    return abs(now_ms - ts) <= tolerance_ms and hmac.compare_digest(dingtalk_signature(secret, timestamp_ms), sign)


def wecom_body(subject: str, body: str, msgtype: str, mentioned_mobiles: list[str]) -> dict[str, Any]:
    """The JSON of a WeCom group-robot message."""
    if msgtype == "markdown":
        return {"msgtype": "markdown", "markdown": {"content": _cut(f"**{subject}**\n\n{body}", WECOM_MARKDOWN_MAX)}}
    text: dict[str, Any] = {"content": _cut(f"{subject}\n\n{body}", WECOM_TEXT_MAX)}
    if mentioned_mobiles:
        text["mentioned_mobile_list"] = mentioned_mobiles
    return {"msgtype": "text", "text": text}


def dingtalk_body(subject: str, body: str, msgtype: str, at_mobiles: list[str]) -> dict[str, Any]:
    """The JSON of a DingTalk robot message (an @ needs the number in the text too, as DingTalk asks)."""
    mention = "".join(f" @{m}" for m in at_mobiles)
    if msgtype == "markdown":
        md = body.replace("\n", "  \n")  # DingTalk's markdown breaks a line only after two spaces
        out: dict[str, Any] = {"msgtype": "markdown",
                               "markdown": {"title": subject, "text": _cut(f"### {subject}\n\n{md}{mention}",
                                                                           DINGTALK_MAX)}}
    else:
        out = {"msgtype": "text", "text": {"content": _cut(f"{subject}\n\n{body}{mention}", DINGTALK_MAX)}}
    if at_mobiles:
        out["at"] = {"atMobiles": at_mobiles, "isAtAll": False}
    return out


def _post_robot(http: httpx.Client, url: str, params: dict[str, str], payload: dict[str, Any], shown: str) -> None:
    """POST to a robot; both robots answer HTTP 200 with `errcode` 0 on success, another code on refusal."""
    try:
        resp = http.post(url, params=params, json=payload)
    except httpx.HTTPError as exc:
        raise NotifyError(f"{shown}: {type(exc).__name__}: {exc}") from exc
    if resp.status_code >= 300:
        raise NotifyError(f"{shown}: HTTP {resp.status_code}: {resp.text[:200]}",
                          permanent=400 <= resp.status_code < 500 and resp.status_code not in (408, 429))
    try:
        answer = resp.json()
        code = int(answer.get("errcode", -1))
    except (ValueError, AttributeError, TypeError):
        raise NotifyError(f"{shown}: not a robot's answer: {resp.text[:200]}") from None
    if code != 0:
        raise NotifyError(f"{shown}: errcode {code}: {str(answer.get('errmsg', ''))[:200]}",
                          permanent=code not in _RATE_LIMITED)


def send_wecom(http: httpx.Client, url: str, key: str, payload: dict[str, Any]) -> None:
    """Post a WeCom robot message; NotifyError (errcode and errmsg) when the robot refuses it."""
    _post_robot(http, url, {"key": key}, payload, f"WeCom robot {url}")


def send_dingtalk(http: httpx.Client, url: str, access_token: str, secret: str, payload: dict[str, Any]) -> None:
    """Post a DingTalk robot message, signed when `secret` is set; NotifyError when the robot refuses it."""
    params = {"access_token": access_token}
    if secret:
        ts = str(int(time.time() * 1000))
        # httpx encodes the query itself: hand it the Base64 text, so it is URL-encoded exactly once.
        params |= {"timestamp": ts, "sign": dingtalk_signature(secret, ts)}
    _post_robot(http, url, params, payload, f"DingTalk robot {url}")
